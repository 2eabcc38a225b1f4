//! The agent as a Windows service (`credguard-agent`): `agent service install|uninstall`
//! through the service control manager, and `agent --service`, which the SCM starts: the
//! dispatcher entry is `credguard_winapi::service::dispatch` (the only unsafe part), the
//! control handler turns Stop/Shutdown into the agent's graceful shutdown.

use std::ffi::OsString;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use super::RunArgs;
use crate::Context;
use crate::exit::{CliError, Exit};

/// The service's key name.
pub const SERVICE_NAME: &str = "credguard-agent";

/// What the service runs, handed from `run` to the dispatcher's thread.
static TO_RUN: Mutex<Option<(Context, RunArgs)>> = Mutex::new(None);
/// How the service's run ended, handed back.
static FAILED: Mutex<Option<CliError>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An SCM error, with the exit code its Win32 error asks for.
fn scm_error(what: &str, e: &windows_service::Error) -> CliError {
    let os = match e {
        windows_service::Error::Winapi(io) => io.raw_os_error(),
        _ => None,
    };
    let (code, hint) = match os {
        // ERROR_ACCESS_DENIED
        Some(5) => (Exit::State, "; run it as an administrator"),
        // ERROR_SERVICE_EXISTS
        Some(1073) => (Exit::AlreadyExists, "; uninstall it first"),
        // ERROR_SERVICE_DOES_NOT_EXIST
        Some(1060) => (Exit::NotFound, ""),
        _ => (Exit::State, ""),
    };
    CliError::new(
        code,
        format!("service {SERVICE_NAME}: {what}: {}{hint}", detail(e)),
    )
}

/// The Win32 error behind an SCM error, or its own words.
fn detail(e: &windows_service::Error) -> String {
    match e {
        windows_service::Error::Winapi(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// Registers the service (automatic start, LocalSystem) to run `credguard agent FLAGS
/// --service` with this backend and state directory, and starts it.
pub fn install(ctx: &Context, args: &RunArgs) -> Result<(&'static str, String), CliError> {
    let exe = std::env::current_exe().map_err(|e| {
        CliError::new(
            Exit::State,
            format!("cannot tell where credguard.exe is: {e}"),
        )
    })?;
    let mut arguments: Vec<OsString> = vec![
        "--backend".into(),
        ctx.backend.name().into(),
        "--state-dir".into(),
        ctx.state_dir.clone().into_os_string(),
    ];
    arguments.extend(args.service_arguments().into_iter().map(OsString::from));
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(|e| scm_error("cannot open the service control manager", &e))?;
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: "credguard node agent".into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: arguments,
        dependencies: Vec::new(),
        account_name: None,
        account_password: None,
    };
    let service = manager
        .create_service(
            &info,
            ServiceAccess::CHANGE_CONFIG | ServiceAccess::START | ServiceAccess::QUERY_STATUS,
        )
        .map_err(|e| scm_error("cannot create it", &e))?;
    let _ = service.set_description(
        "Removes orphaned Container Credential Guard instances: those of containers the container runtime no longer lists.",
    );
    service
        .start::<&str>(&[])
        .map_err(|e| scm_error("installed, but it did not start", &e))?;
    Ok(("installed and started", SERVICE_NAME.to_owned()))
}

/// Stops the service (the agent shuts down gracefully) and deletes it.
pub fn uninstall() -> Result<(&'static str, String), CliError> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| scm_error("cannot open the service control manager", &e))?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .map_err(|e| scm_error("cannot open it", &e))?;
    let state = |s: &windows_service::service::Service| {
        s.query_status()
            .map(|st| st.current_state)
            .map_err(|e| scm_error("cannot query it", &e))
    };
    if state(&service)? != ServiceState::Stopped {
        service
            .stop()
            .map_err(|e| scm_error("cannot stop it", &e))?;
        // The agent stops within a few seconds; 30 s bounds a hang.
        let deadline = Instant::now() + Duration::from_secs(30);
        while state(&service)? != ServiceState::Stopped {
            if Instant::now() > deadline {
                return Err(CliError::new(
                    Exit::State,
                    format!(
                        "service {SERVICE_NAME} did not stop within 30 s; stop it (sc.exe stop {SERVICE_NAME}) and try again"
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    service
        .delete()
        .map_err(|e| scm_error("cannot delete it", &e))?;
    Ok(("stopped and uninstalled", SERVICE_NAME.to_owned()))
}

/// `agent --service`: connects to the SCM, which runs [`service_main`]; returns when the
/// service has stopped.
pub fn run(ctx: &Context, args: RunArgs) -> Result<Exit, CliError> {
    *lock(&TO_RUN) = Some((ctx.clone(), args));
    credguard_winapi::service::dispatch(SERVICE_NAME, service_main).map_err(|e| {
        CliError::new(
            Exit::Unavailable,
            format!(
                "cannot connect to the service control manager ({}): --service is for the service `agent service install` registers, which the SCM starts; in a console, run `agent` without it",
                detail(&e)
            ),
        )
    })?;
    match lock(&FAILED).take() {
        Some(e) => Err(e),
        None => Ok(Exit::Ok),
    }
}

fn status(state: ServiceState, accept: ServiceControlAccept, exit: u32) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(exit),
        checkpoint: 0,
        wait_hint: Duration::from_secs(10),
        process_id: None,
    }
}

/// The service's main, on the dispatcher's thread: Running until Stop or Shutdown, then the
/// agent's graceful shutdown, then Stopped.
fn service_main(_: Vec<OsString>) {
    let Some((ctx, args)) = lock(&TO_RUN).take() else {
        return;
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stop = Mutex::new(Some(stop));
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
            if let Some(stop) = lock(&stop).take() {
                let _ = stop.send(());
            }
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = match service_control_handler::register(SERVICE_NAME, handler) {
        Ok(handle) => handle,
        Err(e) => {
            *lock(&FAILED) = Some(scm_error("cannot register its control handler", &e));
            return;
        }
    };
    let _ = handle.set_service_status(status(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        0,
    ));
    let result = super::run_agent(&ctx, &args, move || {
        Ok(async move {
            let _ = stopped.await;
            tracing::info!("service stop: shutting down");
        })
    });
    let exit = u32::from(result.is_err());
    if let Err(e) = result {
        tracing::error!(error = %e.error, "the agent service failed");
        *lock(&FAILED) = Some(e);
    }
    let _ = handle.set_service_status(status(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        exit,
    ));
}
