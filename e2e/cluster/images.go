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

// LoadImages loads local docker images into every node, like `kind load docker-image`. A node
// whose containerd already holds the same image ID is skipped, which keeps reuse mode fast.
func (c *Cluster) LoadImages(ctx context.Context, images ...string) error {
	if ok, why := c.CanLoadImages(); !ok {
		return fmt.Errorf("load images %s: %s", strings.Join(images, " "), why)
	}
	kn, err := c.kindNodes()
	if err != nil {
		return fmt.Errorf("load images: %w", err)
	}
	for _, img := range images {
		if err := c.loadImage(ctx, img, kn); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) loadImage(ctx context.Context, image string, kn []nodes.Node) error {
	start := time.Now()
	id, err := imageID(ctx, image)
	if err != nil {
		return fmt.Errorf("load image: %w", err)
	}
	var missing []nodes.Node
	for _, n := range kn {
		// ImageID fails when the node does not have the image at all.
		if have, err := nodeutils.ImageID(n, image); err != nil || have != id {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		c.log.Info("image already on every node", "image", image)
		return nil
	}
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
	c.log.Info("image loaded", "image", image, "nodes", len(missing), "skipped", len(kn)-len(missing), "took", since(start))
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
