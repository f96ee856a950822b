// Command kube-node links what a real worker node of `llmops cluster up`
// runs from k8s.io/kubernetes: kubelet, kube-proxy and a device plugin that
// advertises fake GPUs. Built from the same pinned module as the control
// plane (one Go build cache), it picks the component from argv[0].
//
// The device plugin is Kubernetes' own DevicePluginStub (the one its
// test/images/sample-device-plugin runs); the sample hard-codes the resource
// name example.com/resource, so this main gives the stub the name and the
// device count from flags instead (nvidia.com/gpu on the local node).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/klog/v2"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
	plugin "k8s.io/kubernetes/pkg/kubelet/cm/devicemanager/plugin/v1beta1"
)

func devicePlugin(args []string) int {
	fs := flag.NewFlagSet("device-plugin", flag.ExitOnError)
	resource := fs.String("resource", "nvidia.com/gpu", "extended resource name to advertise")
	count := fs.Int("count", 2, "number of fake devices")
	dir := fs.String("socket-dir", pluginapi.DevicePluginPath, "kubelet's device-plugins folder")
	version := fs.Bool("version", false, "print the version and exit")
	_ = fs.Parse(args)
	if *version {
		fmt.Println("llmops-device-plugin (k8s.io/kubernetes DevicePluginStub)")
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := klog.FromContext(ctx)
	devs := make([]*pluginapi.Device, 0, *count)
	for i := 0; i < *count; i++ {
		devs = append(devs, &pluginapi.Device{ID: fmt.Sprintf("fake-gpu-%d", i), Health: pluginapi.Healthy})
	}
	socket := filepath.Join(*dir, "llmops-fake-gpu.sock")
	stub := plugin.NewDevicePluginStub(logger, devs, socket, *resource, false, false)
	// The stub's default allocation answers no container at all, which the
	// kubelet rejects; answer each container with the devices it got, in the
	// variable NVIDIA's runtime reads (nothing reads it here: no real GPU).
	stub.SetAllocFunc(func(r *pluginapi.AllocateRequest, _ map[string]*pluginapi.Device) (*pluginapi.AllocateResponse, error) {
		out := &pluginapi.AllocateResponse{}
		for _, c := range r.ContainerRequests {
			out.ContainerResponses = append(out.ContainerResponses, &pluginapi.ContainerAllocateResponse{
				Envs: map[string]string{"NVIDIA_VISIBLE_DEVICES": strings.Join(c.DevicesIds, ",")},
			})
		}
		return out, nil
	})
	if err := stub.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "device plugin: start:", err)
		return 1
	}
	kubeletSocket := filepath.Join(*dir, filepath.Base(pluginapi.KubeletSocket))
	if err := stub.Register(ctx, kubeletSocket, *resource, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "device plugin: register with kubelet:", err)
		return 1
	}
	// Re-registers when the kubelet restarts (its socket is re-created).
	go stub.Watch(ctx, kubeletSocket, *resource, *dir)
	<-ctx.Done()
	_ = stub.Stop(logger)
	return 0
}

func main() {
	name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
	switch name {
	case "kubelet":
		os.Exit(cli.Run(kubelet.NewKubeletCommand(context.Background())))
	case "kube-proxy":
		os.Exit(cli.Run(proxy.NewProxyCommand()))
	case "llmops-device-plugin":
		os.Exit(devicePlugin(os.Args[1:]))
	default:
		fmt.Fprintf(os.Stderr, "%s: start me as kubelet, kube-proxy or llmops-device-plugin (symlink), not %q\n", os.Args[0], name)
		os.Exit(2)
	}
}
