//! [`UserStore`](crate::store::UserStore): management users with their password and token
//! hashes, unique e-mails and token hashes, and `modify_user` deciding under the user's lock.

use std::future::Future;
use std::pin::Pin;

use crate::crypto::PasswordHash;
use crate::model::{SecretHash, User, UserRole, UserStatus};
use crate::store::{Limit, Store, StoreError, UserQuery};

use super::fixtures::{at, event_types_of, parse, system_event};
use super::{Spawner, expect_already_exists, expect_not_found, ok, run_concurrently};

/// User `n`: `usr_{n:04}`, `user{n}@example.com`, active, with a (fixed) password hash.
pub fn user(n: u32) -> User {
    User {
        id: parse(&format!("usr_{n:04}")),
        email: format!("user{n}@example.com"),
        role: UserRole::Support,
        status: UserStatus::Active,
        failed_sign_ins: 0,
        locked_until: None,
        last_sign_in_at: None,
        password_set_at: None,
        pending: None,
        created_at: at(n.into()),
        updated_at: at(n.into()),
        password_hash: Some(PasswordHash::from_stored(format!(
            "$argon2id$v=19$fixture{n}"
        ))),
        token_hash: None,
        totp_enabled: false,
        totp_last_step: None,
        totp_secret: None,
    }
}

/// `list_users` filters by role and status, pages by e-mail after a cursor, and orders
/// e-mails byte by byte (`.` before letters, whatever the database's collation).
pub async fn users_list_by_role_status_and_cursor<S: Store + Clone + Send + Sync + 'static>(
    store: S,
) {
    let cases = [
        ("ab@example.com", UserRole::Support, UserStatus::Active),
        ("a.z@example.com", UserRole::Licensee, UserStatus::Active),
        ("c@example.com", UserRole::Licensee, UserStatus::Invited),
        ("a-b@example.com", UserRole::Admin, UserStatus::Disabled),
        ("d@example.com", UserRole::Licensee, UserStatus::Disabled),
    ];
    for (n, (email, role, status)) in (1..).zip(cases) {
        let mut u = user(n);
        (u.email, u.role, u.status) = (email.into(), role, status);
        ok(store.insert_user(&u, vec![]).await, "insert_user");
    }
    let emails = |query: UserQuery| {
        let store = store.clone();
        async move {
            let page = ok(store.list_users(&query).await, "list_users");
            page.into_iter().map(|u| u.email).collect::<Vec<_>>()
        }
    };
    let all = [
        "a-b@example.com",
        "a.z@example.com",
        "ab@example.com",
        "c@example.com",
        "d@example.com",
    ];
    assert_eq!(emails(UserQuery::default()).await, all, "byte order");
    let licensees = UserQuery {
        role: Some(UserRole::Licensee),
        ..UserQuery::default()
    };
    assert_eq!(
        emails(licensees.clone()).await,
        ["a.z@example.com", "c@example.com", "d@example.com"]
    );
    let disabled = UserQuery {
        status: Some(UserStatus::Disabled),
        ..UserQuery::default()
    };
    assert_eq!(emails(disabled).await, ["a-b@example.com", "d@example.com"]);
    let both = UserQuery {
        status: Some(UserStatus::Active),
        ..licensees.clone()
    };
    assert_eq!(emails(both).await, ["a.z@example.com"]);
    let owners = UserQuery {
        role: Some(UserRole::Owner),
        ..UserQuery::default()
    };
    assert!(emails(owners).await.is_empty(), "no owner");

    // Pages of two, each after the last e-mail of the one before, cover every user once.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = emails(UserQuery {
            after: after.clone(),
            limit: Limit::new(Some(2)),
            ..UserQuery::default()
        })
        .await;
        let Some(last) = page.last().cloned() else {
            break;
        };
        assert!(page.len() <= 2, "a page holds at most its limit");
        seen.extend(page);
        after = Some(last);
    }
    assert_eq!(seen, all, "pages after a cursor");
    let after_licensee = UserQuery {
        after: Some("a.z@example.com".into()),
        ..licensees
    };
    assert_eq!(
        emails(after_licensee).await,
        ["c@example.com", "d@example.com"],
        "a cursor with a filter"
    );
}

/// Insert, get, find by e-mail and by token hash, list by e-mail, hashes kept; e-mails and
/// token hashes unique; unknown users not found.
pub async fn users_round_trip<S: Store + Clone + Send + Sync + 'static>(store: S) {
    let mut b = user(2);
    b.email = "b@example.com".into();
    b.status = UserStatus::Invited;
    b.password_hash = None;
    b.token_hash = Some(SecretHash::of("ust_invitation"));
    let mut a = user(1);
    a.email = "a@example.com".into();
    a.totp_enabled = true;
    a.totp_last_step = Some(41);
    a.totp_secret = crate::crypto::TotpSecret::from_bytes(&[7; 20]);
    for u in [&b, &a] {
        let ev = system_event("user.invited", "user", u.id.as_str(), u.created_at);
        ok(store.insert_user(u, vec![ev]).await, "insert_user");
    }
    assert_eq!(
        ok(store.get_user(&a.id).await, "get_user"),
        a,
        "hashes and the TOTP secret round trip"
    );
    assert_eq!(ok(store.find_user("b@example.com").await, "find_user"), b);
    assert_eq!(
        ok(
            store
                .find_user_by_token(&SecretHash::of("ust_invitation"))
                .await,
            "find_user_by_token"
        ),
        b
    );
    let listed = ok(store.list_users(&UserQuery::default()).await, "list_users");
    assert_eq!(listed, vec![a.clone(), b.clone()], "users list by e-mail");
    let one = UserQuery {
        limit: Limit::new(Some(1)),
        ..UserQuery::default()
    };
    assert_eq!(ok(store.list_users(&one).await, "list_users").len(), 1);
    assert_eq!(
        event_types_of(&store, a.id.as_str()).await,
        ["user.invited"]
    );

    let mut twin = user(3);
    twin.email = a.email.clone();
    expect_already_exists(
        store.insert_user(&twin, vec![]).await,
        "insert_user, same e-mail",
    );
    let mut token_twin = user(4);
    token_twin.token_hash = b.token_hash;
    expect_already_exists(
        store.insert_user(&token_twin, vec![]).await,
        "insert_user, same token hash",
    );
    expect_not_found(
        store.get_user(&user(9).id).await,
        "get_user of an unknown id",
    );
    expect_not_found(
        store.find_user("nobody@example.com").await,
        "find_user, unknown",
    );
    expect_not_found(
        store.find_user_by_token(&SecretHash::of("ust_other")).await,
        "find_user_by_token, unknown",
    );
    expect_not_found(
        store.modify_user(&user(9).id, |_| unreachable!()).await,
        "modify_user of an unknown id",
    );

    // modify_user: `None` changes nothing; a change is stored with its events; uniqueness
    // still holds.
    let same = ok(
        store.modify_user(&b.id, |_| None).await,
        "modify_user(None)",
    );
    assert_eq!(same, b);
    let accepted = ok(
        store
            .modify_user(&b.id, |u| {
                let mut u = u.clone();
                u.status = UserStatus::Active;
                u.token_hash = None;
                u.password_hash = Some(PasswordHash::from_stored("$argon2id$v=19$new".into()));
                let ev = system_event("user.activated", "user", u.id.as_str(), at(10));
                Some((u, vec![ev]))
            })
            .await,
        "modify_user",
    );
    assert_eq!(ok(store.get_user(&b.id).await, "get_user"), accepted);
    assert_eq!(accepted.token_hash, None);
    expect_not_found(
        store
            .find_user_by_token(&SecretHash::of("ust_invitation"))
            .await,
        "a cleared token finds nobody",
    );
    assert_eq!(
        event_types_of(&store, b.id.as_str()).await,
        ["user.invited", "user.activated"]
    );
    let taken = store
        .modify_user(&b.id, |u| {
            let mut u = u.clone();
            u.email = a.email.clone();
            Some((u, vec![]))
        })
        .await;
    expect_already_exists(taken, "modify_user onto a taken e-mail");
    assert_eq!(ok(store.get_user(&b.id).await, "get_user"), accepted);
}

/// 32 concurrent `modify_user` calls on one user each see the previous one's write: every
/// increment of `failed_sign_ins` counts.
pub async fn concurrent_user_changes_are_serialized<
    S: Store + Clone + Send + Sync + 'static,
    Sp: Spawner,
>(
    store: S,
    spawner: Sp,
) {
    const TASKS: u32 = 32;
    let u = user(1);
    ok(store.insert_user(&u, vec![]).await, "insert_user");
    type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
    let tasks: Vec<Boxed<Result<User, StoreError>>> = (0..TASKS)
        .map(|_| {
            let (store, id) = (store.clone(), u.id.clone());
            Box::pin(async move {
                store
                    .modify_user(&id, |u| {
                        let mut u = u.clone();
                        u.failed_sign_ins += 1;
                        Some((u, vec![]))
                    })
                    .await
            }) as Boxed<_>
        })
        .collect();
    for r in run_concurrently(&spawner, tasks).await {
        ok(r, "modify_user under contention");
    }
    assert_eq!(
        ok(store.get_user(&u.id).await, "get_user").failed_sign_ins,
        TASKS,
        "no change is lost"
    );
}
