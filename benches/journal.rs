//! Journal append throughput and acknowledgement latency, per durability policy.
fn main() {}
