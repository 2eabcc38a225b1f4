//! Tests against the stand-in computecore.dll (filled in with the stub crate).
