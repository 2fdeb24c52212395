package storage_test

import (
	"testing"

	"github.com/example/flystorage/internal/storage"
)

// onVolume is a Blobs with the VolumeReporter capability; its other
// methods are never called.
type onVolume struct{ storage.Blobs }

func (onVolume) Volume() (storage.Volume, error) { return storage.Volume{Path: "/data"}, nil }

// wrapped is a storage.BlobsWrapper around inner.
type wrapped struct {
	storage.Blobs
	inner storage.Blobs
}

func (w wrapped) Unwrap() storage.Blobs { return w.inner }

// TestCapability finds a capability on the store itself and through any
// number of wrappers, and reports none when no store has it.
func TestCapability(t *testing.T) {
	for name, store := range map[string]storage.Blobs{
		"the store":        onVolume{},
		"one wrapper":      wrapped{inner: onVolume{}},
		"wrapper, wrapper": wrapped{inner: wrapped{inner: onVolume{}}},
	} {
		v, ok := storage.Capability[storage.VolumeReporter](store)
		if !ok {
			t.Errorf("%s: no VolumeReporter found", name)
			continue
		}
		if vol, err := v.Volume(); err != nil || vol.Path != "/data" {
			t.Errorf("%s: Volume() = %+v, %v", name, vol, err)
		}
		if _, ok := storage.Capability[storage.MultipartAborter](store); ok {
			t.Errorf("%s: found a MultipartAborter that no store implements", name)
		}
	}
	if _, ok := storage.Capability[storage.VolumeReporter](wrapped{inner: wrapped{}}); ok {
		t.Error("found a VolumeReporter through wrappers of nothing")
	}
}
