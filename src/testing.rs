//! Helpers for users who test their own resilience settings with stormglass.
