#!/bin/sh
# A stand-in for the docs' examples (tests/it/docs.rs): does nothing.
exit 0
