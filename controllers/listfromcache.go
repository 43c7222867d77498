package controllers

import (
	"os"

	clientfeatures "k8s.io/client-go/features"
)

// watchListEnv is the environment variable with which client-go lets a user choose streaming lists themselves.
const watchListEnv = "KUBE_FEATURE_" + string(clientfeatures.WatchListClient)

// ListInformersFromTheWatchCache makes the process's informers start with a list served from the API server's watch
// cache as it stands (resourceVersion "0"), as informers did before client-go 1.35, instead of a streaming list
// (client-go's WatchListClient). A streaming list must be as fresh as etcd, and the API server's watch cache of a
// kind with no recent writes learns that it is only from a progress notification it asks etcd for every 100 ms:
// each informer waited up to that long at start-up, and the first install waited for the slowest of twenty. The
// operator's informers hold only its own objects (and the labels of injected pods), so a streaming list saves the
// API server little memory. The list is at most as old as the watch cache, and the watch that follows it delivers
// every change since; reads that must not be stale go to the API server (the conflict check, ownership, deletion).
// A user who sets KUBE_FEATURE_WatchListClient keeps their choice. Call it before any informer starts.
func ListInformersFromTheWatchCache() {
	if _, set := os.LookupEnv(watchListEnv); set {
		return
	}
	clientfeatures.ReplaceFeatureGates(withoutWatchList{clientfeatures.FeatureGates()})
}

// withoutWatchList is client-go's feature gates with WatchListClient off.
type withoutWatchList struct{ clientfeatures.Gates }

func (g withoutWatchList) Enabled(f clientfeatures.Feature) bool {
	if f == clientfeatures.WatchListClient {
		return false
	}
	return g.Gates.Enabled(f)
}
