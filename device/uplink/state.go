package uplink

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/totpbox/totpbox/enroll/proto"
)

// StateFile is the name, in the state directory, of the file holding the
// pairing and the sync revision (0600).
const StateFile = "sync.json"

// syncState is what survives a restart. It is written atomically after
// every applied change, so a restart neither replays nor skips one.
type syncState struct {
	// Server is the server URL the pairing belongs to.
	Server string `json:"server"`
	// ApplianceID and Name are set once paired.
	ApplianceID string `json:"appliance_id,omitempty"`
	Name        string `json:"name,omitempty"`
	// Rev is the last revision applied.
	Rev int64 `json:"rev"`
	// Outbox holds acks not yet delivered.
	Outbox []proto.Ack `json:"outbox,omitempty"`
	// UnpairRev is the revision of an unpair that was applied, until the
	// server has its ack; 0 otherwise.
	UnpairRev int64 `json:"unpair_rev,omitempty"`
	// Reconciled reports that the accounts an earlier pairing placed were
	// reported to the server for this pairing (see Client.reconcile):
	// false from pairing until the server answered.
	Reconciled bool `json:"reconciled,omitempty"`
	// AcceptedBatches are the takeover batches accepted on the appliance:
	// their accounts are stored as they arrive, without asking again.
	AcceptedBatches []string `json:"accepted_batches,omitempty"`
	// Wiped reports that the server told the appliance it was replaced
	// (a wipe change) and the vault was wiped; ReplacedBy names the
	// appliance that replaced it. Both stay until it is paired again.
	Wiped      bool   `json:"wiped,omitempty"`
	ReplacedBy string `json:"replaced_by,omitempty"`
}

func (s syncState) paired() bool { return s.ApplianceID != "" }

func loadState(dir string) (syncState, error) {
	path := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return syncState{}, nil
	}
	if err != nil {
		return syncState{}, fmt.Errorf("read sync state: %w", err)
	}
	var s syncState
	if err := json.Unmarshal(b, &s); err != nil {
		return syncState{}, fmt.Errorf("sync state file %s is damaged: not valid JSON", path)
	}
	return s, nil
}

func saveState(dir string, s syncState) error {
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, StateFile), b); err != nil {
		return fmt.Errorf("save sync state: %w", err)
	}
	return nil
}

// addAck puts a into the outbox, replacing an ack of the same revision.
func (s *syncState) addAck(a proto.Ack) {
	for i, o := range s.Outbox {
		if o.Rev == a.Rev {
			s.Outbox[i] = a
			return
		}
	}
	s.Outbox = append(s.Outbox, a)
}

// ackFor returns the queued ack of rev.
func (s *syncState) ackFor(rev int64) (proto.Ack, bool) {
	for _, o := range s.Outbox {
		if o.Rev == rev {
			return o, true
		}
	}
	return proto.Ack{}, false
}
