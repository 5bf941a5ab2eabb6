//! Redis connections per gateway node stay flat as topics grow.
