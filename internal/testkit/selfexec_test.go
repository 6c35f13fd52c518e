package testkit

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestSelfCommand runs the test binary again, under the interpreter the
// test runs under (qemu-user in the ARM runs), and hears back from it.
func TestSelfCommand(t *testing.T) {
	if os.Getenv("TESTKIT_SELF_CHILD") == "1" {
		fmt.Println("child says hello")
		return
	}
	cmd, err := SelfCommand("-test.run=^TestSelfCommand$", "-test.v")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "TESTKIT_SELF_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, out)
	}
	if !strings.Contains(string(out), "child says hello") {
		t.Errorf("child output %q lacks its greeting", out)
	}
	interp, err := Interpreter()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("interpreter %q", interp)
}
