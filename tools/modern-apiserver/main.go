// Command modern-apiserver is the upstream standalone CRD server (k8s.io/apiextensions-apiserver, built
// from Debian's -dev packages by scripts/modern-apiserver) with what a test bed needs and the upstream
// `main` lacks outside a cluster: static bearer tokens (--token-auth-file, the kube-apiserver CSV format),
// members of system:masters allowed everything and nobody else anything, and no dependency on a core
// Kubernetes API (no admission webhooks, no priority-and-fairness, no service informers).
// It serves CustomResourceDefinitions and custom resources only; CEL validation, structural-schema
// checks, server-side apply and field validation are the upstream code, unchanged.
package main

import (
	"errors"
	goflag "flag"
	"fmt"
	"net"
	"net/url"
	"os"

	"github.com/spf13/pflag"
	noopoteltrace "go.opentelemetry.io/otel/trace/noop"

	"k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/apiserver/pkg/util/webhook"
	scheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	netutils "k8s.io/utils/net"
)

// noServices: conversion webhooks cannot be resolved (there is no core API); DealPayment has none.
type noServices struct{}

func (noServices) ResolveEndpoint(namespace, name string, port int32) (*url.URL, error) {
	return nil, errors.New("modern-apiserver serves no Services")
}

func run() error {
	o := options.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	fs := pflag.NewFlagSet("modern-apiserver", pflag.ContinueOnError)
	o.AddFlags(fs)
	klog.InitFlags(nil) // -v, --logtostderr, ... as the upstream binary has them
	fs.AddGoFlagSet(goflag.CommandLine)
	tokenFile := fs.String("token-auth-file", "", "static bearer tokens, CSV: token,user,uid,\"group1,group2\"")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if *tokenFile == "" {
		return errors.New("--token-auth-file is required")
	}
	if err := o.ServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	if err := o.Complete(); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	// No core API to delegate to: authentication and authorization are set below, admission plugins
	// (webhooks, policies, namespace lifecycle) and priority-and-fairness need a core API and are off.
	o.RecommendedOptions.Authentication = nil
	o.RecommendedOptions.Authorization = nil
	o.RecommendedOptions.CoreAPI = nil
	o.RecommendedOptions.Admission = nil
	o.RecommendedOptions.Features.EnablePriorityAndFairness = false

	if err := o.RecommendedOptions.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return fmt.Errorf("self-signed certificates: %w", err)
	}
	serverConfig := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	if err := o.ServerRunOptions.ApplyTo(&serverConfig.Config); err != nil {
		return err
	}
	if err := o.RecommendedOptions.ApplyTo(serverConfig); err != nil {
		return err
	}
	if err := o.APIEnablement.ApplyTo(&serverConfig.Config, apiserver.DefaultAPIResourceConfigSource(), apiserver.Scheme); err != nil {
		return err
	}
	tokens, err := tokenfile.NewCSV(*tokenFile)
	if err != nil {
		return fmt.Errorf("--token-auth-file: %w", err)
	}
	serverConfig.Authentication.Authenticator = bearertoken.New(tokens)
	serverConfig.Authorization.Authorizer = authorizerfactory.NewPrivilegedGroups(user.SystemPrivilegedGroup)

	defs := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
	namer := openapinamer.NewDefinitionNamer(apiserver.Scheme, scheme.Scheme)
	serverConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(defs, namer) // /openapi/v2 for older kubectl
	serverConfig.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(defs, namer)

	config := &apiserver.Config{
		GenericConfig: serverConfig,
		ExtraConfig: apiserver.ExtraConfig{
			CRDRESTOptionsGetter: options.NewCRDRESTOptionsGetter(*o.RecommendedOptions.Etcd, serverConfig.ResourceTransformers, serverConfig.StorageObjectCountTracker),
			ServiceResolver:      noServices{},
			AuthResolverWrapper:  webhook.NewDefaultAuthenticationInfoResolverWrapper(nil, nil, serverConfig.LoopbackClientConfig, noopoteltrace.NewTracerProvider()),
		},
	}
	server, err := config.Complete().New(genericapiserver.NewEmptyDelegate())
	if err != nil {
		return err
	}
	ctx := genericapiserver.SetupSignalContext()
	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "modern-apiserver: %v\n", err)
		os.Exit(1)
	}
}
