//! # shuyu-core
//!
//! The vocabulary every other shuyu crate speaks: typed ids, the [`clock::Clock`]
//! that makes time an input, the parties and roles of the source rules
//! ([`party`]), validated domain values ("parse, don't validate"), the
//! user-facing error vocabulary ([`error`]) and its translations ([`i18n`]).
//!
//! This crate does no I/O. Everything here can be unit-tested in isolation.
//!
//! ```
//! use shuyu_core::party::{OrgKind, Role, Username};
//! let name = Username::parse("zhang.wei").expect("a valid username");
//! assert_eq!(name.as_str(), "zhang.wei");
//! assert!(OrgKind::Operator.permitted_roles().contains(&Role::Developer));
//! ```

pub mod actor;
pub mod clock;
pub mod error;
pub mod i18n;
pub mod id;
pub mod ident;
pub mod party;
pub mod secret;
pub mod sign;
