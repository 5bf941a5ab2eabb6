//! A master killed mid-burst loses nothing silently; `--redis-wait`.
