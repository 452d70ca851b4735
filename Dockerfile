# syntax=docker/dockerfile:1.7
# The operator image: the package from its wheel, a pinned and checksum-verified Terraform, the
# built-in Terraform modules with their registry modules and a provider mirror baked in (no
# download at init: operator and Jobs alike), and the CRD. Non-root, no compilers or package caches.
# Build: docker build -t llmapp-operator:0.1.0 .   (linux/amd64; needs the Terraform registry and
# GitHub at build time; tests/unit/test_dockerfile.py checks it statically: no engine there)

ARG PYTHON_VERSION=3.11
ARG TERRAFORM_VERSION=1.11.4
# SHA256 of terraform_${TERRAFORM_VERSION}_linux_amd64.zip from HashiCorp's SHA256SUMS.
ARG TERRAFORM_SHA256=1ce994251c00281d6845f0f268637ba50c0005657eb3cf096b92f753b42ef4dc

FROM python:${PYTHON_VERSION}-slim AS wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# The operator's wheel and the wheels of its runtime dependencies (no dev or sandbox extras).
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim AS terraform
ARG TERRAFORM_VERSION
ARG TERRAFORM_SHA256
# ADD --checksum refuses a download whose SHA256 differs from the pin.
ADD --checksum=sha256:${TERRAFORM_SHA256} \
    https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_amd64.zip \
    /tmp/terraform.zip
RUN python -c "import zipfile; zipfile.ZipFile('/tmp/terraform.zip').extract('terraform', '/out')" \
    && chmod 0755 /out/terraform

# The stack's dependencies, resolved once here: the registry modules (`terraform get`; they are git
# sources on GitHub, hence git in this stage only) and every provider the stack and those modules
# require, as a filesystem mirror for linux_amd64 (`providers mirror` honours a committed
# .terraform.lock.hcl). Then an init through the image's own CLI config proves the mirror is
# complete: read-only against the committed lock file, else it writes one from the mirror, so the
# image pins exactly what it carries. The operator copies .terraform/modules into each workspace.
FROM python:${PYTHON_VERSION}-slim AS providers
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=terraform /out/terraform /usr/local/bin/terraform
# Providers under registry.terraform.io/hashicorp/ come only from the mirror; any others (a custom
# module's) from their registry. The operator passes TF_CLI_CONFIG_FILE on to every terraform.
COPY <<"EOF" /opt/llmapp-operator/terraformrc
provider_installation {
  filesystem_mirror {
    path    = "/opt/llmapp-operator/providers"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/*"]
  }
}
EOF
COPY terraform/stack /opt/llmapp-operator/terraform/stack
WORKDIR /opt/llmapp-operator/terraform/stack
RUN terraform get -no-color \
    && terraform providers mirror -platform=linux_amd64 /opt/llmapp-operator/providers \
    && find .terraform/modules -name .git -type d -prune -exec rm -rf {} + \
    && if [ -f .terraform.lock.hcl ]; then lockfile=-lockfile=readonly; else lockfile=; fi \
    && TF_CLI_CONFIG_FILE=/opt/llmapp-operator/terraformrc \
       terraform init -backend=false -input=false -no-color $lockfile \
    && rm -rf .terraform/providers

FROM python:${PYTHON_VERSION}-slim
RUN groupadd --gid 10001 llmapp && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin llmapp
COPY --from=wheels /wheels /tmp/wheels
# The sandbox (API and GitHub emulators, demo) ships in the wheel for `make demo` but has no place in
# the image: it is removed, and the product never imports it (an import-linter contract).
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels llmapp-operator && rm -rf /tmp/wheels \
    && python -c "import llmapp_sandbox, pathlib, shutil; shutil.rmtree(pathlib.Path(llmapp_sandbox.__file__).parent)"
COPY --from=terraform /out/terraform /usr/local/bin/terraform
# The stack with its lock file and installed registry modules (.terraform/modules), the mirror, the CLI config.
COPY --from=providers /opt/llmapp-operator/terraform/stack /opt/llmapp-operator/terraform/stack
COPY --from=providers /opt/llmapp-operator/providers /opt/llmapp-operator/providers
COPY --from=providers /opt/llmapp-operator/terraformrc /opt/llmapp-operator/terraformrc
COPY terraform/sandbox /opt/llmapp-operator/terraform/sandbox
COPY crds/llmapp.yaml /opt/llmapp-operator/crds/llmapp.yaml
ENV LLMAPP_TERRAFORM_DIR=/opt/llmapp-operator/terraform \
    TF_CLI_CONFIG_FILE=/opt/llmapp-operator/terraformrc \
    LLMAPP_WORKDIR=/work \
    HOME=/work \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["llmapp-operator"]
CMD ["run"]
