# syntax=docker/dockerfile:1.7
# The operator image: the package from its wheel, a pinned and checksum-verified Terraform, the
# built-in Terraform modules and the CRD. Non-root, no compilers or package caches in the result.
# Build: docker build -t llmapp-operator:0.1.0 .   (linux/amd64; tests/unit/test_dockerfile.py checks the pins)

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

FROM python:${PYTHON_VERSION}-slim
RUN groupadd --gid 10001 llmapp && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin llmapp
COPY --from=wheels /wheels /tmp/wheels
# The sandbox (API and GitHub emulators, demo) ships in the wheel for `make demo` but has no place in
# the image: it is removed, and the product never imports it (an import-linter contract).
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels llmapp-operator && rm -rf /tmp/wheels \
    && python -c "import llmapp_sandbox, pathlib, shutil; shutil.rmtree(pathlib.Path(llmapp_sandbox.__file__).parent)"
COPY --from=terraform /out/terraform /usr/local/bin/terraform
COPY terraform/stack /opt/llmapp-operator/terraform/stack
COPY terraform/sandbox /opt/llmapp-operator/terraform/sandbox
COPY crds/llmapp.yaml /opt/llmapp-operator/crds/llmapp.yaml
ENV LLMAPP_TERRAFORM_DIR=/opt/llmapp-operator/terraform \
    LLMAPP_WORKDIR=/work \
    HOME=/work \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["llmapp-operator"]
CMD ["run"]
