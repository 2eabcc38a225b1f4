//! The state of an installed Windows service, read through the service control manager.

use std::ptr;

use windows_sys::Win32::Foundation::GetLastError;
use windows_sys::Win32::System::Services::{
    CloseServiceHandle, OpenSCManagerW, OpenServiceW, QueryServiceStatusEx, SC_HANDLE,
    SC_MANAGER_CONNECT, SC_STATUS_PROCESS_INFO, SERVICE_QUERY_STATUS, SERVICE_STATUS_PROCESS,
};

use crate::wide::WideCString;

/// A service's `dwCurrentState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    /// `SERVICE_STOPPED`.
    Stopped,
    /// `SERVICE_START_PENDING`.
    StartPending,
    /// `SERVICE_STOP_PENDING`.
    StopPending,
    /// `SERVICE_RUNNING`.
    Running,
    /// `SERVICE_CONTINUE_PENDING`, `SERVICE_PAUSE_PENDING`, `SERVICE_PAUSED` or another
    /// value: the number.
    Other(u32),
}

impl ServiceState {
    fn from_raw(state: u32) -> Self {
        match state {
            1 => ServiceState::Stopped,
            2 => ServiceState::StartPending,
            3 => ServiceState::StopPending,
            4 => ServiceState::Running,
            other => ServiceState::Other(other),
        }
    }
}

/// A service-control-manager handle, closed when dropped.
struct ScHandle(SC_HANDLE);

impl Drop for ScHandle {
    fn drop(&mut self) {
        // SAFETY: self.0 is a non-null handle OpenSCManagerW/OpenServiceW returned, closed
        // once, here.
        unsafe { CloseServiceHandle(self.0) };
    }
}

fn last_error() -> u32 {
    // SAFETY: reads this thread's last-error value; no preconditions.
    unsafe { GetLastError() }
}

/// The current state of service `name` (its key name: `vmcompute`), read with
/// `OpenSCManagerW(SC_MANAGER_CONNECT)`, `OpenServiceW(SERVICE_QUERY_STATUS)` and
/// `QueryServiceStatusEx(SC_STATUS_PROCESS_INFO)`: rights every user has.
///
/// # Errors
/// The Win32 error code: `ERROR_SERVICE_DOES_NOT_EXIST` (1060) for a service that is not
/// installed, `ERROR_ACCESS_DENIED`, ...
pub fn service_state(name: &WideCString) -> Result<ServiceState, u32> {
    // SAFETY: null machine and database names mean the local, active database.
    let manager = unsafe { OpenSCManagerW(ptr::null(), ptr::null(), SC_MANAGER_CONNECT) };
    if manager.is_null() {
        return Err(last_error());
    }
    let manager = ScHandle(manager);
    // SAFETY: manager is open; name is NUL-terminated and outlives the call.
    let service = unsafe { OpenServiceW(manager.0, name.as_ptr(), SERVICE_QUERY_STATUS) };
    if service.is_null() {
        return Err(last_error());
    }
    let service = ScHandle(service);
    // SAFETY: SERVICE_STATUS_PROCESS is plain data; all zeroes is a valid value.
    let mut status: SERVICE_STATUS_PROCESS = unsafe { std::mem::zeroed() };
    let size = u32::try_from(size_of::<SERVICE_STATUS_PROCESS>()).unwrap_or(u32::MAX);
    let mut needed = 0u32;
    // SAFETY: service is open with SERVICE_QUERY_STATUS; the buffer is a
    // SERVICE_STATUS_PROCESS of `size` bytes, as SC_STATUS_PROCESS_INFO asks; needed is a
    // valid out-pointer.
    let ok = unsafe {
        QueryServiceStatusEx(
            service.0,
            SC_STATUS_PROCESS_INFO,
            (&raw mut status).cast::<u8>(),
            size,
            &mut needed,
        )
    };
    if ok == 0 {
        return Err(last_error());
    }
    Ok(ServiceState::from_raw(status.dwCurrentState))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_that_is_not_installed_is_error_1060() {
        let name = WideCString::new("credguard-winapi-no-such-service").unwrap();
        assert_eq!(service_state(&name).unwrap_err(), 1060);
    }

    #[test]
    fn an_installed_service_has_a_state() {
        // Wine and every Windows install the RPC service (RpcSs); its state does not matter.
        let name = WideCString::new("RpcSs").unwrap();
        let state = service_state(&name).unwrap();
        assert!(!matches!(state, ServiceState::Other(0)), "{state:?}");
    }

    /// On a Windows host with the Containers feature: `cargo test -p credguard-winapi
    /// --lib -- --ignored vmcompute` (docs/WINDOWS.md, "Doctor on a real host").
    #[test]
    #[ignore = "real Windows host with the Containers feature only"]
    fn vmcompute_is_installed_and_running_on_a_container_host() {
        let name = WideCString::new("vmcompute").unwrap();
        assert_eq!(service_state(&name).unwrap(), ServiceState::Running);
    }
}
