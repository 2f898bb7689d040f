//! The user routes: unread counts (docs/protocol.md §2.3) and erasing a
//! user (§2.6), each the user's own to ask for.

use chatroom_core::auth::acting_as;
use chatroom_core::{ApiError, Sender, forget_user};

use crate::identity::Access;
use crate::publish::Announcer;
use crate::router::Request;
use crate::spin_db::SpinDb;
use crate::{Reply, identity_required, to_value};

/// `GET /users/{name}/unread`. Unread counts are personal: with identity
/// on, only the user's own token reads them.
pub async fn unread(req: Request) -> Result<Reply, ApiError> {
    let user = Sender::parse_username(&req.params.name)?;
    let token_user = Access::from_variables().writer(&req.http)?;
    acting_as(token_user.as_ref().map(Sender::as_str), Some(user.as_str()))?;
    let unread = chatroom_core::unread(&SpinDb::open()?, &user)?;
    Ok(Reply::Found(to_value(&unread)))
}

/// `DELETE /users/{name}`: the user's own token, or an operator's.
pub async fn forget(req: Request) -> Result<Reply, ApiError> {
    let user = Sender::parse_username(&req.params.name)?;
    let Some(principal) = Access::from_variables().principal(&req.http)? else {
        return Err(identity_required("erasing a user"));
    };
    if principal.user != user && !principal.operator {
        return Err(ApiError::Forbidden(format!(
            "only {}'s own token, or an operator's, erases {}",
            user.as_str(),
            user.as_str()
        )));
    }
    let forgotten = forget_user(&SpinDb::open()?, &user)?;
    Announcer::from_variables().announce(&forgotten);
    Ok(Reply::Found(to_value(&forgotten)))
}
