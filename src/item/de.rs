//! Deserializing values straight from a borrowed item.
