//! Read-only registry keys and their values.

use std::ptr;

use windows_sys::Win32::Foundation::{ERROR_MORE_DATA, ERROR_SUCCESS};
use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, KEY_READ, RegCloseKey, RegOpenKeyExW,
    RegQueryValueExW,
};

use crate::wide::WideCString;

/// The registry hives credguard reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegRoot {
    /// `HKEY_LOCAL_MACHINE`.
    LocalMachine,
    /// `HKEY_CURRENT_USER` (the tests use it: it is writable without administrator rights).
    CurrentUser,
}

/// An open registry key, closed when dropped.
#[derive(Debug)]
pub struct RegKey(HKEY);

/// A registry value: its `REG_*` type and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegValue {
    /// The `REG_*` type (`REG_SZ`, `REG_DWORD`, ...).
    pub kind: u32,
    /// The bytes of the value, as stored.
    pub data: Vec<u8>,
}

impl RegKey {
    /// `RegOpenKeyExW(root, subkey, 0, KEY_READ)`.
    ///
    /// # Errors
    /// The Win32 error code (`ERROR_FILE_NOT_FOUND` for a key that does not exist).
    pub fn open(root: RegRoot, subkey: &WideCString) -> Result<RegKey, u32> {
        let root = match root {
            RegRoot::LocalMachine => HKEY_LOCAL_MACHINE,
            RegRoot::CurrentUser => HKEY_CURRENT_USER,
        };
        let mut key: HKEY = ptr::null_mut();
        // SAFETY: root is a predefined key; subkey is NUL-terminated and outlives the call;
        // key is a valid out-pointer.
        let status = unsafe { RegOpenKeyExW(root, subkey.as_ptr(), 0, KEY_READ, &mut key) };
        if status == ERROR_SUCCESS {
            Ok(RegKey(key))
        } else {
            Err(status)
        }
    }

    /// `RegQueryValueExW`: the type and the bytes of value `name`.
    ///
    /// # Errors
    /// The Win32 error code (`ERROR_FILE_NOT_FOUND` for a value that does not exist).
    pub fn query(&self, name: &WideCString) -> Result<RegValue, u32> {
        // The value can grow between the size query and the read: retry a few times.
        for _ in 0..8 {
            let mut kind = 0u32;
            let mut size = 0u32;
            // SAFETY: the key is open; name is NUL-terminated; a null data pointer asks for
            // the size only; kind and size are valid out-pointers.
            let status = unsafe {
                RegQueryValueExW(
                    self.0,
                    name.as_ptr(),
                    ptr::null(),
                    &mut kind,
                    ptr::null_mut(),
                    &mut size,
                )
            };
            if status != ERROR_SUCCESS {
                return Err(status);
            }
            let mut data = vec![0u8; size as usize];
            // SAFETY: as above, and data is valid for `size` byte writes.
            let status = unsafe {
                RegQueryValueExW(
                    self.0,
                    name.as_ptr(),
                    ptr::null(),
                    &mut kind,
                    data.as_mut_ptr(),
                    &mut size,
                )
            };
            match status {
                ERROR_SUCCESS => {
                    data.truncate(size as usize);
                    return Ok(RegValue { kind, data });
                }
                ERROR_MORE_DATA => {}
                other => return Err(other),
            }
        }
        Err(ERROR_MORE_DATA)
    }
}

impl Drop for RegKey {
    fn drop(&mut self) {
        // SAFETY: self.0 is a key RegOpenKeyExW opened and that is closed once, here.
        unsafe { RegCloseKey(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use windows_sys::Win32::Foundation::ERROR_FILE_NOT_FOUND;
    use windows_sys::Win32::System::Registry::REG_SZ;

    use super::*;

    #[test]
    fn a_missing_key_and_a_missing_value_are_file_not_found() {
        let absent = WideCString::new(r"Software\credguard-winapi-tests\no-such-key").unwrap();
        assert_eq!(
            RegKey::open(RegRoot::CurrentUser, &absent).unwrap_err(),
            ERROR_FILE_NOT_FOUND
        );
        // HKCU\Environment exists in every profile (Wine's included).
        let key = RegKey::open(
            RegRoot::CurrentUser,
            &WideCString::new("Environment").unwrap(),
        )
        .unwrap();
        let name = WideCString::new("credguard-winapi-no-such-value").unwrap();
        assert_eq!(key.query(&name).unwrap_err(), ERROR_FILE_NOT_FOUND);
    }

    #[test]
    fn a_string_value_is_read_with_its_type() {
        // HKLM\...\Windows NT\CurrentVersion has its ProductName in every installation.
        let key = RegKey::open(
            RegRoot::LocalMachine,
            &WideCString::new(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion").unwrap(),
        )
        .unwrap();
        let value = key
            .query(&WideCString::new("ProductName").unwrap())
            .unwrap();
        assert_eq!(value.kind, REG_SZ);
        assert!(
            value.data.len() >= 2 && value.data.len().is_multiple_of(2),
            "{value:?}"
        );
        assert_eq!(&value.data[value.data.len() - 2..], &[0, 0], "{value:?}");
    }
}
