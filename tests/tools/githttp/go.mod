// A smart-HTTP Git server over TLS (git http-backend as CGI behind Go's
// net/http), for the Git host tests (tests/hosts.rs). Standard library only.
// Not part of the Rust build; see tests/tools/build.sh.
module gitfleet.dev/tools/githttp

go 1.24.0
