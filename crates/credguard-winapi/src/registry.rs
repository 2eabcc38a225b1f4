//! Read-only registry keys, their subkeys and their values.

use std::ptr;

use windows_sys::Win32::Foundation::{
    ERROR_FILE_NOT_FOUND, ERROR_MORE_DATA, ERROR_NO_MORE_ITEMS, ERROR_SUCCESS,
};
use windows_sys::Win32::System::Environment::ExpandEnvironmentStringsW;
use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_CLASSES_ROOT, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, KEY_READ, REG_EXPAND_SZ,
    REG_SZ, RegCloseKey, RegEnumKeyExW, RegOpenKeyExW, RegQueryValueExW,
};

use crate::wide::WideCString;

/// The registry hives credguard reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegRoot {
    /// `HKEY_LOCAL_MACHINE`.
    LocalMachine,
    /// `HKEY_CURRENT_USER` (the tests use it: it is writable without administrator rights).
    CurrentUser,
    /// `HKEY_CLASSES_ROOT` (COM classes: `CLSID\{GUID}\InprocServer32`).
    ClassesRoot,
}

/// The error a string value read with [`RegKey::query_text`] ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    /// The Win32 error of the registry call (`ERROR_FILE_NOT_FOUND`: no such value).
    Win32(u32),
    /// The value is not `REG_SZ` or `REG_EXPAND_SZ`: its type.
    NotAString(u32),
    /// The bytes are not UTF-16 text.
    NotText,
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
            RegRoot::ClassesRoot => HKEY_CLASSES_ROOT,
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

    /// `RegEnumKeyExW` until `ERROR_NO_MORE_ITEMS`: the names of the key's subkeys, in the
    /// registry's order.
    ///
    /// # Errors
    /// The Win32 error code of the first call that failed otherwise.
    pub fn subkeys(&self) -> Result<Vec<String>, u32> {
        let mut names = Vec::new();
        // A key name is at most 255 characters; the buffer has room for the NUL.
        let mut buffer = [0u16; 256];
        for index in 0u32.. {
            let mut len = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
            // SAFETY: the key is open; buffer is valid for `len` u16 writes and len is a
            // valid in/out pointer; the reserved, class and time pointers may be null.
            let status = unsafe {
                RegEnumKeyExW(
                    self.0,
                    index,
                    buffer.as_mut_ptr(),
                    &mut len,
                    ptr::null(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            };
            match status {
                ERROR_SUCCESS => {
                    let len = (len as usize).min(buffer.len());
                    names.push(String::from_utf16_lossy(&buffer[..len]));
                }
                ERROR_NO_MORE_ITEMS => break,
                other => return Err(other),
            }
        }
        Ok(names)
    }

    /// Whether the key has a subkey `name` (opened and closed again).
    ///
    /// # Errors
    /// The Win32 error of opening it, other than `ERROR_FILE_NOT_FOUND`.
    pub fn has_subkey(&self, name: &WideCString) -> Result<bool, u32> {
        let mut key: HKEY = ptr::null_mut();
        // SAFETY: the key is open; name is NUL-terminated and outlives the call; key is a
        // valid out-pointer.
        let status = unsafe { RegOpenKeyExW(self.0, name.as_ptr(), 0, KEY_READ, &mut key) };
        match status {
            ERROR_SUCCESS => {
                drop(RegKey(key));
                Ok(true)
            }
            ERROR_FILE_NOT_FOUND => Ok(false),
            other => Err(other),
        }
    }

    /// The text of string value `name` (the empty name reads the key's default value):
    /// `REG_SZ` as stored, `REG_EXPAND_SZ` with its `%VARIABLES%` expanded, without the
    /// terminating NUL.
    ///
    /// # Errors
    /// [`TextError`]: the registry call failed (`ERROR_FILE_NOT_FOUND` for no such value),
    /// the value is of another type, or it is not UTF-16 text.
    pub fn query_text(&self, name: &WideCString) -> Result<String, TextError> {
        let value = self.query(name).map_err(TextError::Win32)?;
        if value.kind != REG_SZ && value.kind != REG_EXPAND_SZ {
            return Err(TextError::NotAString(value.kind));
        }
        if !value.data.len().is_multiple_of(2) {
            return Err(TextError::NotText);
        }
        let mut units: Vec<u16> = value
            .data
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        while units.last() == Some(&0) {
            units.pop();
        }
        let text = String::from_utf16(&units).map_err(|_| TextError::NotText)?;
        if value.kind == REG_EXPAND_SZ {
            let wide = WideCString::new(&text).map_err(|_| TextError::NotText)?;
            return expand_environment(&wide).map_err(TextError::Win32);
        }
        Ok(text)
    }
}

/// `ExpandEnvironmentStringsW`: `text` with each `%NAME%` of a defined environment variable
/// replaced by its value (undefined ones are left as they are).
///
/// # Errors
/// The Win32 error code when the call fails.
pub fn expand_environment(text: &WideCString) -> Result<String, u32> {
    let mut size: u32 = 0;
    // The expansion can change between the two calls: retry a few times.
    for _ in 0..8 {
        let mut buffer = vec![0u16; size as usize];
        // SAFETY: text is NUL-terminated and outlives the call; buffer is valid for `size`
        // u16 writes (a zero size with a dangling-but-unused pointer asks for the size).
        let needed = unsafe { ExpandEnvironmentStringsW(text.as_ptr(), buffer.as_mut_ptr(), size) };
        if needed == 0 {
            return Err(std::io::Error::last_os_error()
                .raw_os_error()
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(0));
        }
        if needed <= size {
            // `needed` counts the terminating NUL.
            buffer.truncate(needed as usize - 1);
            return Ok(String::from_utf16_lossy(&buffer));
        }
        size = needed;
    }
    Err(ERROR_MORE_DATA)
}

impl Drop for RegKey {
    fn drop(&mut self) {
        // SAFETY: self.0 is a key RegOpenKeyExW opened and that is closed once, here.
        unsafe { RegCloseKey(self.0) };
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn the_subkeys_of_a_key_are_listed() {
        // HKLM\SOFTWARE has Microsoft (and Classes) everywhere.
        let key = RegKey::open(
            RegRoot::LocalMachine,
            &WideCString::new("SOFTWARE").unwrap(),
        )
        .unwrap();
        let names = key.subkeys().unwrap();
        assert!(
            names.iter().any(|n| n.eq_ignore_ascii_case("Microsoft")),
            "{names:?}"
        );
        assert!(
            key.has_subkey(&WideCString::new("Microsoft").unwrap())
                .unwrap()
        );
        assert!(
            !key.has_subkey(&WideCString::new("credguard-no-such-subkey").unwrap())
                .unwrap()
        );
    }

    #[test]
    fn the_classes_root_is_readable() {
        // HKCR\CLSID holds the COM classes of every installation (Wine's included).
        let key = RegKey::open(RegRoot::ClassesRoot, &WideCString::new("CLSID").unwrap()).unwrap();
        assert!(!key.subkeys().unwrap().is_empty());
    }

    #[test]
    fn a_string_value_reads_as_text_and_a_default_value_by_the_empty_name() {
        let key = RegKey::open(
            RegRoot::LocalMachine,
            &WideCString::new(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion").unwrap(),
        )
        .unwrap();
        let name = key
            .query_text(&WideCString::new("ProductName").unwrap())
            .unwrap();
        assert!(!name.is_empty() && !name.contains('\0'), "{name:?}");
        assert_eq!(
            key.query_text(&WideCString::new("credguard-no-such-value").unwrap()),
            Err(TextError::Win32(ERROR_FILE_NOT_FOUND))
        );
        // CurrentVersion has no default value: the empty name reads it, and it is missing.
        assert!(matches!(
            key.query_text(&WideCString::new("").unwrap()),
            Err(TextError::Win32(_)) | Ok(_)
        ));
    }

    #[test]
    fn expand_sz_values_and_variables_are_expanded() {
        // HKLM\...\Windows NT\CurrentVersion\SystemRoot is REG_SZ on Windows; the
        // expansion itself is checked on a literal.
        let root = std::env::var("SystemRoot").unwrap();
        let text = expand_environment(&WideCString::new(r"%SystemRoot%\System32\ccg.exe").unwrap())
            .unwrap();
        assert_eq!(text, format!(r"{root}\System32\ccg.exe"));
        let kept =
            expand_environment(&WideCString::new("%credguard_no_such_var%").unwrap()).unwrap();
        assert_eq!(kept, "%credguard_no_such_var%");
        let empty = expand_environment(&WideCString::new("").unwrap()).unwrap();
        assert_eq!(empty, "");
        // ComSpec is REG_EXPAND_SZ `%SystemRoot%\system32\cmd.exe` on Windows and Wine.
        let env = RegKey::open(
            RegRoot::LocalMachine,
            &WideCString::new(r"SYSTEM\CurrentControlSet\Control\Session Manager\Environment")
                .unwrap(),
        )
        .unwrap();
        let raw = env.query(&WideCString::new("ComSpec").unwrap()).unwrap();
        assert_eq!(raw.kind, REG_EXPAND_SZ);
        let comspec = env
            .query_text(&WideCString::new("ComSpec").unwrap())
            .unwrap();
        assert!(
            !comspec.contains('%') && comspec.to_ascii_lowercase().ends_with("cmd.exe"),
            "{comspec:?}"
        );
    }
}
