package store_test

import (
	"testing"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.OpenSQLite(t) })
}

func TestPostgres(t *testing.T) {
	storetest.PostgresDSN(t) // skip (or fail in CI) before any subtest
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.OpenPostgres(t) })
}
