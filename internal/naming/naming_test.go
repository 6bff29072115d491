package naming

import "testing"

func TestCheckServiceName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"items", true},
		{"order-service_2", true},
		{"", false},
		{"has space", false},
		{"dot.ted", false},
		{"star*", false},
		{"x" + string(make([]byte, 64)), false},
	}
	for _, tt := range tests {
		if err := CheckServiceName(tt.name); (err == nil) != tt.ok {
			t.Errorf("CheckServiceName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err := CheckEndpointName(tt.name); (err == nil) != tt.ok {
			t.Errorf("CheckEndpointName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	tests := []struct {
		version string
		ok      bool
	}{
		{"1.0.0", true},
		{"0.1.0-alpha.1+build.5", true},
		{"1.0", false},
		{"v1.0.0", false},
		{"01.0.0", false},
		{"", false},
	}
	for _, tt := range tests {
		if err := CheckVersion(tt.version); (err == nil) != tt.ok {
			t.Errorf("CheckVersion(%q) = %v, want ok=%v", tt.version, err, tt.ok)
		}
	}
}
