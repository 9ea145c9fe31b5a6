#!/bin/sh
# A stand-in for the docs' examples (tests/it/docs/): does nothing.
exit 0
