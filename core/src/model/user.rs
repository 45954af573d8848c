//! Users (an extension): people who operate the licensing service, signing in with an e-mail
//! and a password for a session instead of sharing bearer tokens, each with a built-in
//! [`UserRole`] that maps to the existing management scopes (tokens stay for machines); and
//! license users ([`UserRole::Licensee`]), who activate devices on the licenses assigned to
//! them. One e-mail is one user, of either kind.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::enums::wire_enum;
use super::{ManagementScope, SecretHash, UserId};
use crate::crypto::{PasswordHash, TotpSecret};

wire_enum!(
    /// A management user's built-in role.
    UserRole {
        /// Everything, including managing users and their roles.
        Owner = "owner",
        /// Every management operation (the `admin` scope), including users below owner.
        Admin = "admin",
        /// Support staff: read everything, reset and blacklist devices.
        Support = "support",
        /// Billing: read everything, create and renew licenses (`license:write`, which also
        /// covers customers and the other license changes).
        Billing = "billing",
        /// A license user, not an operator: no management scope at all. Signs in at
        /// `POST /api/v1/license/users/sign-in` (never the console) and activates devices on
        /// the licenses assigned to it.
        Licensee = "licensee",
    }
);

/// The read scopes every role has.
const READ: [ManagementScope; 4] = [
    ManagementScope::ProductRead,
    ManagementScope::LicenseRead,
    ManagementScope::EventRead,
    ManagementScope::ReportRead,
];

impl UserRole {
    /// The management scopes the role grants.
    pub fn scopes(self) -> Vec<ManagementScope> {
        match self {
            Self::Owner | Self::Admin => vec![ManagementScope::Admin],
            Self::Support => [READ.as_slice(), &[ManagementScope::DeviceWrite]].concat(),
            Self::Billing => [READ.as_slice(), &[ManagementScope::LicenseWrite]].concat(),
            Self::Licensee => Vec::new(),
        }
    }

    /// Whether the role operates the service (signs in to the console and the management
    /// API) rather than using licenses. A user stays on its side: an operator's role never
    /// becomes [`Self::Licensee`] nor the other way round.
    pub fn is_operator(self) -> bool {
        self != Self::Licensee
    }
}

wire_enum!(
    /// Where a management user stands.
    UserStatus {
        /// Invited: no password yet; signs in after accepting the invitation.
        Invited = "invited",
        /// May sign in.
        Active = "active",
        /// May not sign in; sessions stop working at once.
        Disabled = "disabled",
    }
);

wire_enum!(
    /// What a user's one-time token is for.
    UserTokenPurpose {
        /// Sets the first password of an invited user.
        Invitation = "invitation",
        /// Sets a new password.
        PasswordReset = "password_reset",
    }
);

/// A user's pending one-time token: its purpose and expiry (the token itself is shown once and
/// stored hashed, [`User::token_hash`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingToken {
    pub purpose: UserTokenPurpose,
    pub expires_at: DateTime<Utc>,
}

/// A management user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    /// Lowercase; unique.
    pub email: String,
    pub role: UserRole,
    pub status: UserStatus,
    /// Wrong passwords since the last sign-in (reset by a right one).
    pub failed_sign_ins: u32,
    /// Set after repeated wrong passwords: no sign-in is accepted before then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// When the password was last set: sessions opened before then no longer work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_set_at: Option<DateTime<Utc>>,
    /// The one-time token waiting to be used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingToken>,
    /// Whether sign-in also asks for a TOTP code (enrolled and confirmed).
    #[serde(default)]
    pub totp_enabled: bool,
    /// The TOTP step last accepted: a code is accepted once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_last_step: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The password's Argon2id hash; `None` until the invitation is accepted. Never
    /// serialized.
    #[serde(skip)]
    pub password_hash: Option<PasswordHash>,
    /// SHA-256 of the pending one-time token. Never serialized.
    #[serde(skip)]
    pub token_hash: Option<SecretHash>,
    /// The TOTP secret, enrolled (confirmed when `totp_enabled`). Never serialized.
    #[serde(skip)]
    pub totp_secret: Option<TotpSecret>,
}
