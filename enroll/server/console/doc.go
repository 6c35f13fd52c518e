// Package console serves people in a browser: the admin console (users,
// MFA devices, the "Register MFA device" wizard, appliances, settings,
// audit log) and the user portal, with sign-in, sessions, CSRF tokens,
// templates and static files. Every change is an operation of
// enroll/server/core; the console reads what it shows through Store, the
// role it needs of the store.
package console
