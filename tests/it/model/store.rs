//! The reference model's memory: a few Redis keys (string, list, sorted
//! set, hash), each with an optional expiry on the server's clock (ms).
//! Only what the lock's keys need; expiry is applied on every access, as
//! Redis does.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    List(Vec<String>),
    /// member -> score
    ZSet(BTreeMap<String, f64>),
    Hash(BTreeMap<String, String>),
    /// A type the lock never uses (another application's set).
    Set(Vec<String>),
}

impl Val {
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Str(_) => "string",
            Val::List(_) => "list",
            Val::ZSet(_) => "zset",
            Val::Hash(_) => "hash",
            Val::Set(_) => "set",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub val: Val,
    /// Expiry, ms on the server's clock.
    pub exp: Option<i64>,
}

/// A WRONGTYPE error: the script stops there.
#[derive(Debug, Clone, PartialEq)]
pub struct WrongType;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Store {
    pub keys: BTreeMap<String, Entry>,
    pub now: i64,
}

impl Store {
    /// Move to `now` and drop what expired.
    pub fn at(&mut self, now: i64) {
        self.now = now;
        self.keys.retain(|_, e| e.exp.is_none_or(|x| x > now));
    }

    pub fn exists(&self, k: &str) -> bool {
        self.keys.contains_key(k)
    }

    pub fn type_of(&self, k: &str) -> &'static str {
        self.keys.get(k).map_or("none", |e| e.val.type_name())
    }

    pub fn get(&self, k: &str) -> Result<Option<String>, WrongType> {
        match self.keys.get(k).map(|e| &e.val) {
            None => Ok(None),
            Some(Val::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(WrongType),
        }
    }

    pub fn set(&mut self, k: &str, v: &str, px: Option<i64>) {
        let exp = px.map(|ms| self.now + ms);
        self.keys.insert(
            k.into(),
            Entry {
                val: Val::Str(v.into()),
                exp,
            },
        );
    }

    pub fn del(&mut self, k: &str) -> bool {
        self.keys.remove(k).is_some()
    }

    pub fn pexpire(&mut self, k: &str, ms: i64) -> bool {
        let now = self.now;
        match self.keys.get_mut(k) {
            Some(e) => {
                if ms <= 0 {
                    self.keys.remove(k);
                } else {
                    e.exp = Some(now + ms);
                }
                true
            }
            None => false,
        }
    }

    /// PTTL: -2 missing, -1 no expiry.
    pub fn pttl(&self, k: &str) -> i64 {
        match self.keys.get(k) {
            None => -2,
            Some(Entry { exp: None, .. }) => -1,
            Some(Entry { exp: Some(x), .. }) => x - self.now,
        }
    }

    fn zset_mut(&mut self, k: &str) -> Result<Option<&mut BTreeMap<String, f64>>, WrongType> {
        match self.keys.get_mut(k).map(|e| &mut e.val) {
            None => Ok(None),
            Some(Val::ZSet(z)) => Ok(Some(z)),
            Some(_) => Err(WrongType),
        }
    }

    pub fn zset(&self, k: &str) -> Result<BTreeMap<String, f64>, WrongType> {
        match self.keys.get(k).map(|e| &e.val) {
            None => Ok(BTreeMap::new()),
            Some(Val::ZSet(z)) => Ok(z.clone()),
            Some(_) => Err(WrongType),
        }
    }

    pub fn zadd(&mut self, k: &str, score: f64, m: &str) -> Result<(), WrongType> {
        match self.zset_mut(k)? {
            Some(z) => {
                z.insert(m.into(), score);
            }
            None => {
                self.keys.insert(
                    k.into(),
                    Entry {
                        val: Val::ZSet([(m.to_string(), score)].into()),
                        exp: None,
                    },
                );
            }
        }
        Ok(())
    }

    /// Remove members; an emptied set is deleted. Returns how many went.
    pub fn zrem(&mut self, k: &str, ms: &[&str]) -> Result<usize, WrongType> {
        let Some(z) = self.zset_mut(k)? else {
            return Ok(0);
        };
        let n = ms.iter().filter(|m| z.remove(**m).is_some()).count();
        if z.is_empty() {
            self.keys.remove(k);
        }
        Ok(n)
    }

    pub fn zscore(&self, k: &str, m: &str) -> Result<Option<f64>, WrongType> {
        Ok(self.zset(k)?.get(m).copied())
    }

    pub fn zcard(&self, k: &str) -> Result<usize, WrongType> {
        Ok(self.zset(k)?.len())
    }

    /// Members by (score, member), as Redis orders them.
    pub fn zrange(&self, k: &str) -> Result<Vec<(String, f64)>, WrongType> {
        let mut v: Vec<_> = self.zset(k)?.into_iter().collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        Ok(v)
    }

    /// ZREMRANGEBYSCORE k -inf max; returns the members removed.
    pub fn zrem_upto(&mut self, k: &str, max: f64) -> Result<Vec<String>, WrongType> {
        let gone: Vec<String> = self
            .zrange(k)?
            .into_iter()
            .filter(|(_, s)| *s <= max)
            .map(|(m, _)| m)
            .collect();
        let refs: Vec<&str> = gone.iter().map(String::as_str).collect();
        self.zrem(k, &refs)?;
        Ok(gone)
    }

    pub fn hash(&self, k: &str) -> Result<BTreeMap<String, String>, WrongType> {
        match self.keys.get(k).map(|e| &e.val) {
            None => Ok(BTreeMap::new()),
            Some(Val::Hash(h)) => Ok(h.clone()),
            Some(_) => Err(WrongType),
        }
    }

    pub fn hset(&mut self, k: &str, f: &str, v: &str) -> Result<(), WrongType> {
        match self.keys.get_mut(k).map(|e| &mut e.val) {
            Some(Val::Hash(h)) => {
                h.insert(f.into(), v.into());
            }
            Some(_) => return Err(WrongType),
            None => {
                self.keys.insert(
                    k.into(),
                    Entry {
                        val: Val::Hash([(f.to_string(), v.to_string())].into()),
                        exp: None,
                    },
                );
            }
        }
        Ok(())
    }

    pub fn hdel(&mut self, k: &str, fs: &[&str]) -> Result<(), WrongType> {
        match self.keys.get_mut(k).map(|e| &mut e.val) {
            Some(Val::Hash(h)) => {
                for f in fs {
                    h.remove(*f);
                }
                if h.is_empty() {
                    self.keys.remove(k);
                }
                Ok(())
            }
            Some(_) => Err(WrongType),
            None => Ok(()),
        }
    }

    pub fn list(&self, k: &str) -> Result<Vec<String>, WrongType> {
        match self.keys.get(k).map(|e| &e.val) {
            None => Ok(Vec::new()),
            Some(Val::List(l)) => Ok(l.clone()),
            Some(_) => Err(WrongType),
        }
    }

    /// LPUSH then LTRIM 0 keep-1.
    pub fn lpush_trim(&mut self, k: &str, v: &str, keep: usize) -> Result<(), WrongType> {
        match self.keys.get_mut(k).map(|e| &mut e.val) {
            Some(Val::List(l)) => {
                l.insert(0, v.into());
                l.truncate(keep);
            }
            Some(_) => return Err(WrongType),
            None => {
                self.keys.insert(
                    k.into(),
                    Entry {
                        val: Val::List(vec![v.into()]),
                        exp: None,
                    },
                );
            }
        }
        Ok(())
    }

    /// Let `k` live at least `ms` more; a key without expiry gets one.
    pub fn keep(&mut self, k: &str, ms: i64) {
        let p = self.pttl(k);
        if p == -1 || (p >= 0 && p < ms) {
            self.pexpire(k, ms);
        }
    }
}
