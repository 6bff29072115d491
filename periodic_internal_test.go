package ferry

import (
	"errors"
	"strings"
	"testing"
)

func TestPeriodicNeedsServer214(t *testing.T) {
	tests := []struct {
		version  string
		declared int
		refused  bool
	}{
		{"2.12.0", 0, false}, // jobs without schedules run on 2.12
		{"2.12.0", 1, true},
		{"2.13.9", 2, true},
		{"2.14.0", 1, false},
		{"2.15.2", 1, false},
	}
	for _, tt := range tests {
		err := checkCronServer(tt.version, tt.declared)
		if (err != nil) != tt.refused {
			t.Errorf("checkCronServer(%s, %d) = %v; refused %v", tt.version, tt.declared, err, tt.refused)
			continue
		}
		var fe *Error
		if tt.refused && (!errors.As(err, &fe) || fe.Status != 503 || fe.Code != "broker_too_old" ||
			!strings.Contains(fe.Detail, "2.14.0") || !strings.Contains(fe.Detail, tt.version)) {
			t.Errorf("checkCronServer(%s): %#v; want a 503 broker_too_old naming both versions", tt.version, err)
		}
	}
}
