//! What the browser downloads (issue 14, udown) need of the database beyond `versions.rs`.

use super::{DEVICES, Db, Result};

impl Db {
    /// The name of the device `device_id` of `user_id`; `None` when the user has no such device
    /// (another user's device looks the same as a missing one).
    pub fn user_device_name(&self, user_id: u64, device_id: u64) -> Result<Option<String>> {
        let txn = self.read()?;
        let devices = txn.open_table(DEVICES)?;
        Ok(super::user_devices(&devices, user_id)?
            .into_iter()
            .find(|(_, d)| d.id == device_id)
            .map(|(name, _)| name))
    }
}

impl Db {
    /// The id of the device named `name` of `user_id`; `None` when the user has none of that
    /// name.
    pub fn user_device_id(&self, user_id: u64, name: &str) -> Result<Option<u64>> {
        let txn = self.read()?;
        let devices = txn.open_table(DEVICES)?;
        Ok(super::user_devices(&devices, user_id)?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.id))
    }
}
