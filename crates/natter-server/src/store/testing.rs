//! Fixtures for the server's unit tests.

use std::path::Path;

use super::{Store, UserRecord};

impl Store {
    /// A fresh database at `path` with one password-less user per name.
    pub(crate) async fn for_tests(path: &Path, users: &[&str]) -> (Self, Vec<UserRecord>) {
        let store = Self::open(path).await.expect("store");
        let mut made = Vec::new();
        for name in users {
            made.push(
                store
                    .create_user(name, None, "", "", "", 0)
                    .await
                    .expect("user"),
            );
        }
        (store, made)
    }
}
