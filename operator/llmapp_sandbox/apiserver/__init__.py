"""A Kubernetes API server emulator, as strict as a real kube-apiserver v1.32 where the operator,
kubectl and Helm depend on it."""
