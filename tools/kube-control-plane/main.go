// Command kube-control-plane links kube-apiserver, kube-controller-manager
// and kube-scheduler from k8s.io/kubernetes into one binary, so the three
// share one compile and one link on small CI machines. It picks the
// component from the name it was started under (argv[0]); the bootstrap
// links each component name to this binary, as hyperkube once did.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata" // CronJob time zones (controller-manager)

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

var components = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
}

func main() {
	name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
	newCommand, ok := components[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "%s: start me as kube-apiserver, kube-controller-manager or kube-scheduler (symlink), not %q\n", os.Args[0], name)
		os.Exit(2)
	}
	os.Exit(cli.Run(newCommand()))
}
