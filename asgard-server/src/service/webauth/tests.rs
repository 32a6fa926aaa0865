//! Tests of the admin console authentication.
