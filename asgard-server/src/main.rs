mod config;
mod db;
mod lock;
mod store;
fn main() {}
