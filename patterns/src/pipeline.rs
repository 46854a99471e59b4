//! placeholder: see the patterns issues
