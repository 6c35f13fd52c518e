package core

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/totpbox/totpbox/enroll/store"
)

// DirectoryUser is a user as an identity source (an LDAP directory, a SCIM
// client) has them.
type DirectoryUser struct {
	// Source names the identity source: "ldap" or "scim".
	Source string
	// ExternalID is the entry's stable id in the source.
	ExternalID  string
	Username    string
	DisplayName string
	Email       string
	// Disabled: the source says the user may not sign in (AD's
	// ACCOUNTDISABLE, SCIM's active false).
	Disabled bool
	// Admin, when set, is whether the source makes the user an admin (a
	// member of the admin group); nil leaves the flag as it is.
	Admin *bool
}

// DirectoryOutcome says what applying a directory user changed.
type DirectoryOutcome int

// What a sync did to one user.
const (
	DirectoryUnchanged DirectoryOutcome = iota
	DirectoryCreated
	DirectoryUpdated
	DirectoryDisabled
	DirectoryReenabled
)

// ApplyDirectoryUser makes the user linked to (Source, ExternalID) match
// du: created (without a password: the source checks it) when new, a
// local user of the same name adopted, names, email and admin flag
// updated, disabled when the source disables them and enabled again only
// when it was the source that disabled them. Nothing is written when
// nothing changed. MFA devices are never touched. It returns a Failure
// (400) for a username or name our rules refuse.
func (s *Core) ApplyDirectoryUser(ctx context.Context, a Actor, du DirectoryUser) (DirectoryOutcome, store.User, error) {
	if err := Allow(a, OpManageUsers); err != nil {
		return DirectoryOutcome(0), store.User{}, err
	}
	name, err := CleanUsername(du.Username)
	if err != nil {
		return 0, store.User{}, Fail(400, "%v", err)
	}
	display, err := cleanDisplayName(du.DisplayName)
	if err != nil {
		return 0, store.User{}, Fail(400, "%v", err)
	}
	email, err := cleanEmail(du.Email)
	if err != nil {
		return 0, store.User{}, Fail(400, "%v", err)
	}
	if du.Source == "" || du.ExternalID == "" {
		return 0, store.User{}, errors.New("directory user without a source or external id")
	}
	link, u, err := s.linkedUser(ctx, du.Source, du.ExternalID)
	if err != nil {
		return 0, store.User{}, err
	}
	if u.ID == 0 {
		// Not linked yet: adopt a user of that name, or create one.
		switch existing, err := s.store.UserByName(ctx, name); {
		case err == nil:
			if l, err := s.store.UserLink(ctx, existing.ID); err == nil && (l.Source != du.Source || l.ExternalID != du.ExternalID) {
				return 0, store.User{}, Fail(409, "username %q already belongs to %s entry %s", name, l.Source, l.ExternalID)
			}
			u = existing
			link = store.DirectoryLink{UserID: u.ID, Source: du.Source, ExternalID: du.ExternalID}
			if err := s.store.LinkUser(ctx, link); err != nil {
				return 0, store.User{}, err
			}
			s.Audit(ctx, a, "user.adopt", "user:"+u.Username, "now from "+du.Source)
		case errors.Is(err, store.ErrNotFound):
			u = store.User{Username: name, DisplayName: display, Email: email, Disabled: du.Disabled}
			if du.Admin != nil {
				u.Admin = *du.Admin
			}
			err := s.Atomic(ctx, func(ctx context.Context) error {
				if err := s.store.CreateUser(ctx, &u); err != nil {
					return err
				}
				link = store.DirectoryLink{UserID: u.ID, Source: du.Source, ExternalID: du.ExternalID, DisabledBySource: du.Disabled}
				if err := s.store.LinkUser(ctx, link); err != nil {
					return err
				}
				role := "user"
				if u.Admin {
					role = "admin"
				}
				s.Audit(ctx, a, "user.create", "user:"+u.Username, role+" from "+du.Source)
				return nil
			})
			if errors.Is(err, store.ErrConflict) {
				return 0, store.User{}, Fail(409, "user %q already exists", name)
			}
			if err != nil {
				return 0, store.User{}, err
			}
			return DirectoryCreated, u, nil
		default:
			return 0, store.User{}, err
		}
	}
	want := u
	want.Username, want.DisplayName, want.Email = name, display, email
	if du.Admin != nil {
		want.Admin = *du.Admin
	}
	outcome := DirectoryUnchanged
	wantLink := link
	switch {
	case du.Disabled && !u.Disabled:
		want.Disabled, wantLink.DisabledBySource = true, true
		outcome = DirectoryDisabled
	case !du.Disabled && u.Disabled && link.DisabledBySource:
		want.Disabled, wantLink.DisabledBySource = false, false
		outcome = DirectoryReenabled
	case !du.Disabled && !u.Disabled && link.DisabledBySource:
		wantLink.DisabledBySource = false
	}
	if want != u {
		if err := s.writeDirectoryUser(ctx, a, u, want, du.Source); err != nil {
			return 0, store.User{}, err
		}
		if outcome == DirectoryUnchanged {
			outcome = DirectoryUpdated
		}
	}
	if wantLink != link {
		if err := s.store.LinkUser(ctx, wantLink); err != nil {
			return 0, store.User{}, err
		}
	}
	return outcome, want, nil
}

// linkedUser returns the link and user of (source, externalID); a zero
// user when none is linked.
func (s *Core) linkedUser(ctx context.Context, source, externalID string) (store.DirectoryLink, store.User, error) {
	l, err := s.store.LinkByExternalID(ctx, source, externalID)
	if errors.Is(err, store.ErrNotFound) {
		return store.DirectoryLink{}, store.User{}, nil
	}
	if err != nil {
		return store.DirectoryLink{}, store.User{}, err
	}
	u, err := s.store.UserByID(ctx, l.UserID)
	return l, u, err
}

// writeDirectoryUser stores want over u, ends the sessions of a user
// being disabled, tells every cache, and audits what changed.
func (s *Core) writeDirectoryUser(ctx context.Context, a Actor, u, want store.User, source string) error {
	if want.Disabled && !u.Disabled && u.Admin {
		if n, err := s.store.CountAdmins(ctx); err == nil && n <= 1 {
			return Fail(409, "%q is the last admin; create another admin first", u.Username)
		}
	}
	err := s.Atomic(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateUser(ctx, want); err != nil {
			return err
		}
		if want.Disabled && !u.Disabled {
			if err := s.store.DeleteUserSessions(ctx, u.ID); err != nil {
				return err
			}
			s.Audit(ctx, a, "user.disable", "user:"+want.Username, "by "+source)
		}
		if !want.Disabled && u.Disabled {
			s.Audit(ctx, a, "user.enable", "user:"+want.Username, "by "+source)
		}
		var changed []string
		if want.Username != u.Username {
			changed = append(changed, "username "+u.Username+" → "+want.Username)
		}
		if want.DisplayName != u.DisplayName {
			changed = append(changed, "display name")
		}
		if want.Email != u.Email {
			changed = append(changed, "email")
		}
		if want.Admin != u.Admin {
			changed = append(changed, fmt.Sprintf("admin %v", want.Admin))
		}
		if len(changed) > 0 {
			s.Audit(ctx, a, "user.update", "user:"+want.Username, strings.Join(changed, ", ")+" from "+source)
		}
		return nil
	})
	if errors.Is(err, store.ErrConflict) {
		return Fail(409, "user %q already exists", want.Username)
	}
	if err != nil {
		return err
	}
	s.userChanged(u.Username)
	if want.Username != u.Username {
		s.userChanged(want.Username)
	}
	return nil
}

// DirectoryUserLeft disables the user linked by l, who is no longer in
// their source (left the group, deleted), marking that the source did
// it. Their MFA devices are kept: should they come back, their codes work
// again. A user already disabled is left as is.
func (s *Core) DirectoryUserLeft(ctx context.Context, a Actor, l store.DirectoryLink) (DirectoryOutcome, error) {
	if err := Allow(a, OpManageUsers); err != nil {
		return DirectoryOutcome(0), err
	}
	u, err := s.store.UserByID(ctx, l.UserID)
	if err != nil {
		return 0, err
	}
	if u.Disabled {
		return DirectoryUnchanged, nil
	}
	want := u
	want.Disabled = true
	if err := s.writeDirectoryUser(ctx, a, u, want, l.Source); err != nil {
		return 0, err
	}
	l.DisabledBySource = true
	if err := s.store.LinkUser(ctx, l); err != nil {
		return 0, err
	}
	return DirectoryDisabled, nil
}

// UserLink returns where a user comes from: its link to an identity
// source ("ldap", "scim"), or a zero link (Source "") for a local user.
func (s *Core) UserLink(ctx context.Context, u store.User) (store.DirectoryLink, error) {
	l, err := s.store.UserLink(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return store.DirectoryLink{}, nil
	}
	return l, err
}

// SourceTitle names an identity source for people: "the LDAP directory",
// "SCIM provisioning".
func SourceTitle(source string) string {
	switch source {
	case SourceLDAP:
		return "the LDAP directory"
	case SourceSCIM:
		return "SCIM provisioning"
	}
	return "identity source " + source
}
