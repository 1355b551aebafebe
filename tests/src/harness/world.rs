//! World builders: a few lines that put users, friendships and conversations in place so each
//! scenario starts from the situation it is about.

use anyhow::{bail, Context, Result};
use natter_proto::PresenceScope;

use super::client::TestClient;
use super::replies::{password_for, LoginOk};
use super::server::TestServer;

impl TestServer {
    /// A plain connection that has said `hello`.
    pub async fn connect(&self) -> Result<TestClient> {
        let client = TestClient::connect_plain(self).await?;
        client.hello().await?;
        Ok(client)
    }

    /// A TLS connection that has said `hello`.
    pub async fn connect_tls(&self) -> Result<TestClient> {
        let client = TestClient::connect_tls(self).await?;
        client.hello().await?;
        Ok(client)
    }

    /// Registers `username` (password [`password_for`]) on a connection of its own, leaving
    /// the user offline.
    pub async fn register(&self, username: &str) -> Result<()> {
        let client = self.connect().await?;
        client
            .register(username, &password_for(username))
            .await
            .with_context(|| format!("while registering {username}"))?;
        Ok(())
    }

    /// Registers `username` and logs in over plain TCP.
    pub async fn user(&self, username: &str) -> Result<TestClient> {
        sign_up(self.connect().await?.named(username), username).await
    }

    /// Registers `username` and logs in over TLS.
    pub async fn user_tls(&self, username: &str) -> Result<TestClient> {
        sign_up(self.connect_tls().await?.named(username), username).await
    }

    /// Logs an already registered `username` in on a fresh plain connection.
    pub async fn login(&self, username: &str) -> Result<TestClient> {
        let client = self.connect().await?.named(username);
        client
            .login(username, &password_for(username))
            .await
            .with_context(|| format!("while logging in {username}"))?;
        Ok(client)
    }

    /// Like [`login`](Self::login), with a presence scope in `hello`.
    pub async fn login_with_presence(
        &self,
        username: &str,
        presence: PresenceScope,
    ) -> Result<TestClient> {
        let client = TestClient::connect_plain(self).await?.named(username);
        client.hello_with(presence).await?;
        client
            .login(username, &password_for(username))
            .await
            .with_context(|| format!("while logging in {username}"))?;
        Ok(client)
    }

    /// Logs a guest in under `username` on a fresh plain connection.
    pub async fn guest(&self, username: &str) -> Result<TestClient> {
        let client = self.connect().await?.named(username);
        client
            .guest(username)
            .await
            .with_context(|| format!("while logging in guest {username}"))?;
        Ok(client)
    }

    /// Resumes a session by token on a fresh plain connection.
    pub async fn resume(&self, label: &str, token: &str) -> Result<(TestClient, LoginOk)> {
        let client = self.connect().await?.named(label);
        let session = client.resume(token).await?;
        Ok((client, session))
    }
}

/// A fresh server with alice and bob (`bobby`) signed up and online, in that order: the
/// opening of most scenarios.
pub async fn alice_and_bob() -> Result<(TestServer, TestClient, TestClient)> {
    let server = TestServer::start().await?;
    let alice = server.user("alice").await?;
    let bob = server.user("bobby").await?;
    Ok((server, alice, bob))
}

/// Makes `a` and `b` friends, both online: `a` asks, `b` sees the request and accepts, `a`
/// sees the answer.
pub async fn befriend(a: &mut TestClient, b: &mut TestClient) -> Result<()> {
    let a_name = a.username().context("the asker is logged in")?;
    let b_name = b.username().context("the asked is logged in")?;
    a.friend_request(&b_name, "").await?;
    b.expect_friend_request_from(&a_name).await?;
    b.friend_respond(&a_name, true).await?;
    let (accepted, _) = a.expect_friend_response_from(&b_name).await?;
    if !accepted {
        bail!("{b_name} accepted, but {a_name} was told the request was rejected");
    }
    Ok(())
}

/// Registers `username` on `client`'s connection, then logs it in there.
async fn sign_up(client: TestClient, username: &str) -> Result<TestClient> {
    client
        .register(username, &password_for(username))
        .await
        .with_context(|| format!("while registering {username}"))?;
    client
        .login(username, &password_for(username))
        .await
        .with_context(|| format!("while logging in {username}"))?;
    Ok(client)
}
