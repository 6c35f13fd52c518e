// Package api serves programs holding a bearer token: the admin JSON API
// (users, MFA devices, registration) and the verify API that applications
// call at sign-in, under /api/v1/. Every change is an operation of
// enroll/server/core; the API reads what it answers, and its tokens,
// through Store, the role it needs of the store. CreateToken and
// RevokeToken are what `totpserver token` calls.
package api
