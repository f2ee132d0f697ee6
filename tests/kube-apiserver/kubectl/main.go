// Command kubectl is the upstream kubectl (k8s.io/kubectl at the release in
// ../go.mod), built from Go modules for gitfleet's apply benchmark, which
// compares gitfleet with `kubectl apply --server-side`. See ../README.md.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
