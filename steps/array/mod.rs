//! The array step: the array side of the procedure through the SANtricity Web Services API
//! (DOMAIN.md "SANtricity REST API"). [`client`] talks to the controllers.

pub mod client;
