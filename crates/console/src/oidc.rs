//! Placeholder replaced below.
use crate::layout::PageError;
use crate::Console;
pub async fn offered(_c: &Console) -> Result<Vec<(String, String)>, PageError> {
    Ok(Vec::new())
}
pub async fn start() -> &'static str {
    ""
}
pub async fn callback() -> &'static str {
    ""
}
