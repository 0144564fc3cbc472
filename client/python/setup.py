"""Builds the lossservice package; the gRPC stubs are generated from the
project's proto/ while the package is built, never stored in the tree.

Where the .proto comes from, first found:
  $LOSSSERVICE_PROTO_DIR, ./proto (in an sdist), ../../proto (the source tree).
What generates the stubs: protoc with grpc_python_plugin when both are on
PATH ($PROTOC and $GRPC_PYTHON_PLUGIN override them), else grpcio-tools.
"""

import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join("lossservice", "v1", "loss_service.proto")


def proto_root():
  for d in (os.environ.get("LOSSSERVICE_PROTO_DIR"), os.path.join(HERE, "proto"),
            os.path.join(HERE, "..", "..", "proto")):
    if d and os.path.isfile(os.path.join(d, PROTO)):
      return os.path.abspath(d)
  raise SystemExit("lossservice: cannot find proto/" + PROTO.replace(os.sep, "/") +
                   "; set LOSSSERVICE_PROTO_DIR to the folder that holds lossservice/")


def generate_stubs(out_dir):
  """Writes lossservice/v1/loss_service_pb2{,_grpc}.py under out_dir."""
  root = proto_root()
  protoc = os.environ.get("PROTOC") or shutil.which("protoc")
  plugin = os.environ.get("GRPC_PYTHON_PLUGIN") or shutil.which("grpc_python_plugin")
  args = [f"-I{root}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
          os.path.join(root, PROTO)]
  if protoc and plugin:
    subprocess.check_call([protoc, f"--plugin=protoc-gen-grpc_python={plugin}"] + args)
  else:
    try:
      from grpc_tools import protoc as grpc_protoc
    except ImportError:
      raise SystemExit("lossservice: generating the stubs needs protoc and grpc_python_plugin "
                       "on PATH, or grpcio-tools")
    if grpc_protoc.main(["protoc"] + args) != 0:
      raise SystemExit("lossservice: grpc_tools.protoc failed")
  init = os.path.join(out_dir, "lossservice", "v1", "__init__.py")
  with open(init, "w") as f:
    f.write('"""Generated from proto/lossservice/v1/loss_service.proto."""\n')


class BuildPy(build_py):
  def run(self):
    super().run()
    generate_stubs(self.build_lib)


class Sdist(sdist):
  """Carries the .proto into the sdist, so that it builds on its own."""

  def make_release_tree(self, base_dir, files):
    super().make_release_tree(base_dir, files)
    target = os.path.join(base_dir, "proto", os.path.dirname(PROTO))
    os.makedirs(target, exist_ok=True)
    shutil.copy(os.path.join(proto_root(), PROTO), target)


if __name__ == "__main__":
  if len(sys.argv) == 3 and sys.argv[1] == "stubs":
    # setup.py stubs DIR: only generate (the tests use this on the source tree).
    generate_stubs(sys.argv[2])
  else:
    setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
