//! Where an open file really is.

use std::io;
use std::path::PathBuf;

use windows_sys::Win32::Storage::FileSystem::GetFinalPathNameByHandleW;

/// The final path of an open file (`GetFinalPathNameByHandleW`, normalised, with the DOS
/// volume name: `\\?\C:\dir\file`): where the handle really is, whatever links or
/// junctions the path that opened it went through.
///
/// # Errors
/// The operating system's error when Windows cannot tell.
pub fn final_path_of(file: &std::fs::File) -> io::Result<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use std::os::windows::io::AsRawHandle;
    let handle = file.as_raw_handle();
    let mut buffer = vec![0u16; 260];
    loop {
        let capacity = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
        // SAFETY: handle is the open handle of `file`, borrowed for the call (the File
        // outlives it); buffer is valid for `capacity` u16 writes; flags 0 are
        // FILE_NAME_NORMALIZED | VOLUME_NAME_DOS, a valid combination.
        let needed = unsafe { GetFinalPathNameByHandleW(handle, buffer.as_mut_ptr(), capacity, 0) };
        let needed = needed as usize;
        if needed == 0 {
            return Err(io::Error::last_os_error());
        }
        if needed < buffer.len() {
            buffer.truncate(needed);
            return Ok(PathBuf::from(std::ffi::OsString::from_wide(&buffer)));
        }
        // Too small: `needed` is the size wanted, with the terminating NUL.
        buffer.resize(needed + 1, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_path_names_the_file_opened() {
        // A path shorter than MAX_PATH: Wine's GetFinalPathNameByHandleW fails with
        // ERROR_MORE_DATA on longer ones (it reads the name into a MAX_PATH buffer).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spëc.json");
        std::fs::write(&path, b"{}").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let final_path = final_path_of(&file).unwrap();
        assert_eq!(
            final_path.file_name().and_then(|f| f.to_str()),
            Some("spëc.json")
        );
        assert!(
            final_path.to_string_lossy().starts_with(r"\\?\"),
            "{}",
            final_path.display()
        );
    }
}
