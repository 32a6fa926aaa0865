//! What Windows gives of an entry beyond std's metadata (issue 12): its owner, for the record,
//! and the hard-link group of a file.
//!
//! **Owner**: the owner SID of the entry's security descriptor, named through
//! [`Owners::account_name`] (`DOMAIN\name`, cached per SID and run).
//!
//! - **The entry itself**: a file from the handle its content is read through; a folder or link
//!   opened as itself (`FILE_FLAG_OPEN_REPARSE_POINT`: a symlink or junction is never followed),
//!   except a root that is a link to a folder (the user named that folder). The handle asks only
//!   for `READ_CONTROL`: all that reading the owner needs, and no more.
//! - **No group**: the primary group of a Windows security descriptor exists for POSIX
//!   compatibility only; Windows tools neither show nor use it, so it is not recorded.
//! - **A failure is no error**: an entry whose owner cannot be read (no `READ_CONTROL` for this
//!   user, a file system without security descriptors such as FAT) is backed up without it.
//!
//! **Hard links**: a file with more than one link (NTFS) gets the key of its volume serial number
//! and 64-bit file index, read by the handle its content is read through (unique on NTFS; ReFS
//! has 128-bit ids, whose low half a restore trusts only together with equal content and mtime).

use std::fs::OpenOptions;
use std::os::windows::fs::OpenOptionsExt;

use windows_permissions::constants::{SeObjectType, SecurityInformation};
use windows_permissions::wrappers;

use super::{Source, inode_key};
use crate::owners::Owners;

/// `READ_CONTROL`: read the security descriptor (owner, group, DACL), not the content.
const READ_CONTROL: u32 = 0x0002_0000;
/// `FILE_FLAG_BACKUP_SEMANTICS`: needed to open a folder at all.
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
/// `FILE_FLAG_OPEN_REPARSE_POINT`: open a link or junction itself, not what it points to.
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
/// `FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE`: never in another program's way.
const SHARE_ALL: u32 = 0x7;

/// The account name of the owner of `src`, or `None` where it cannot be read or named.
pub(super) fn owner(src: Source<'_>, owners: &Owners) -> Option<String> {
    let opened;
    let sd = match src {
        Source::File(f) => {
            wrappers::GetSecurityInfo(f, SeObjectType::SE_FILE_OBJECT, SecurityInformation::Owner)
        }
        Source::Path { path, follow } => {
            let mut flags = FILE_FLAG_BACKUP_SEMANTICS;
            if !follow {
                flags |= FILE_FLAG_OPEN_REPARSE_POINT;
            }
            opened = OpenOptions::new()
                .access_mode(READ_CONTROL)
                .share_mode(SHARE_ALL)
                .custom_flags(flags)
                .open(path)
                .ok()?;
            wrappers::GetSecurityInfo(
                &opened,
                SeObjectType::SE_FILE_OBJECT,
                SecurityInformation::Owner,
            )
        }
    }
    .ok()?;
    let sid = wrappers::GetSecurityDescriptorOwner(&sd).ok()??;
    owners.account_name(sid)
}

/// The hard-link group of a regular file read through `src` (folders and links have none).
pub(super) fn hardlink_key(src: Source<'_>) -> Option<u64> {
    let Source::File(f) = src else { return None };
    let info = winapi_util::file::information(f).ok()?;
    (info.number_of_links() > 1).then(|| inode_key(info.volume_serial_number(), info.file_index()))
}
