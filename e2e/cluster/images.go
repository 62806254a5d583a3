package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
)

// CanLoadImages reports whether LoadImages works in this mode, and if not, why: a spec that
// needs a local image skips with that reason.
func (c *Cluster) CanLoadImages() (bool, string) {
	if c.p.Mode == ModeExisting {
		return false, "existing mode cannot load local images into the cluster's nodes: push them to a registry the cluster pulls from"
	}
	return true, ""
}

// LoadImages loads local docker images into every node that runs pods (podNodes), like `kind
// load docker-image`. A node whose containerd already holds the same image ID is skipped, which
// keeps reuse mode fast.
func (c *Cluster) LoadImages(ctx context.Context, images ...string) error {
	if ok, why := c.CanLoadImages(); !ok {
		return fmt.Errorf("load images %s: %s", strings.Join(images, " "), why)
	}
	kn, err := c.kindNodes()
	if err != nil {
		return fmt.Errorf("load images: %w", err)
	}
	if kn, err = c.podNodes(ctx, kn); err != nil {
		return fmt.Errorf("load images: %w", err)
	}
	// What each node lacks, asked at once: a question is a docker exec, and a reuse run asks one
	// per image and node (8 in 2 s, one after another). The loads that follow take turns.
	missing, errs := make([][]nodes.Node, len(images)), make([]error, len(images))
	var wg sync.WaitGroup
	for i, img := range images {
		wg.Go(func() { missing[i], errs[i] = missingOn(ctx, img, kn) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, img := range images {
		if len(missing[i]) == 0 {
			c.log.Info("image already on every node that runs pods", "image", img)
			continue
		}
		if err := c.loadImage(ctx, img, missing[i], len(kn)); err != nil {
			return err
		}
	}
	return nil
}

// missingOn returns the nodes of kn whose containerd does not hold image with the ID this host's
// docker has for it.
func missingOn(ctx context.Context, image string, kn []nodes.Node) ([]nodes.Node, error) {
	id, err := imageID(ctx, image)
	if err != nil {
		return nil, fmt.Errorf("load image: %w", err)
	}
	lacks := make([]bool, len(kn))
	var wg sync.WaitGroup
	for i, n := range kn {
		wg.Go(func() {
			// ImageID fails when the node does not have the image at all.
			have, err := nodeutils.ImageID(n, image)
			lacks[i] = err != nil || have != id
		})
	}
	wg.Wait()
	var missing []nodes.Node
	for i, n := range kn {
		if lacks[i] {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

// podNodes are the nodes of kn that the suite's pods can be scheduled on: those without a
// NoSchedule or NoExecute taint of their role or their admin's. kind's control plane keeps its
// taint when the cluster has workers, and nothing the suite deploys tolerates it; loading the
// images there too made every load a third longer on 3 nodes and 2 cores. The taints of a node's
// condition (node.kubernetes.io/not-ready and its kin) do not count: they come and go, and a
// worker that joined moments ago still carries one while it is Ready. All of kn when every node
// is tainted.
func (c *Cluster) podNodes(ctx context.Context, kn []nodes.Node) ([]nodes.Node, error) {
	list, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	tainted := map[string]bool{}
	for _, n := range list.Items {
		for _, t := range n.Spec.Taints {
			if strings.HasPrefix(t.Key, "node.kubernetes.io/") {
				continue
			}
			if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
				tainted[n.Name] = true
			}
		}
	}
	var out []nodes.Node
	for _, n := range kn {
		if !tainted[n.String()] {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return kn, nil
	}
	return out, nil
}

// loadImage loads image into the nodes missing it, of all (the number of nodes that run pods).
func (c *Cluster) loadImage(ctx context.Context, image string, missing []nodes.Node, all int) error {
	start := time.Now()
	dir, err := os.MkdirTemp("", "stampede-image-")
	if err != nil {
		return fmt.Errorf("load image %s: %w", image, err)
	}
	defer os.RemoveAll(dir)
	tar := filepath.Join(dir, "image.tar")
	if _, err := Docker(ctx, "save", "-o", tar, image); err != nil {
		return fmt.Errorf("load image %s: %w", image, err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, n := range missing {
		wg.Go(func() {
			err := loadArchive(n, tar)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("load image %s into node %s: %w", image, n, err))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.log.Info("image loaded", "image", image, "nodes", len(missing), "skipped", all-len(missing), "took", since(start))
	return nil
}

func loadArchive(n nodes.Node, tar string) error {
	f, err := os.Open(tar)
	if err != nil {
		return err
	}
	defer f.Close()
	return nodeutils.LoadImageArchive(n, f)
}
