// Package core is the registration server's operations, whoever asks for
// them: start a registration, confirm it, resync, verify a code, send an
// offer to an appliance, create, disable and set the password of users,
// change the settings, and the audit log. It knows nothing of HTML or
// tokens: the console and portal (enroll/server/console) and the JSON
// APIs (enroll/server/api) are thin layers over it; the appliance API
// (enroll/server/appliance) is what it drives to tell appliances about
// MFA device changes.
//
// Errors meant for the requester are *Failure (an HTTP status and a
// one-line message); every other error is internal. The core reads and
// writes through Store, the role it needs of the store.
package core
