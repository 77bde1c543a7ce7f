"""Conan 2 recipe for keel.

keel's core is header-only, so by default the package is a header library
(one package for every configuration). With ``with_grpc=True`` it also
builds the gRPC adapter, keel_grpc, which is a static library, and the
package becomes one: it depends on the settings and is built per
configuration.

Either way the package is keel's own ``cmake --install`` (the layout keel's
packaging test checks), and CMake users get keel's own package files, not
ones Conan generates: ``find_package(keel CONFIG [COMPONENTS grpc spdlog])``
gives keel::keel, keel::grpc, keel::spdlog and keel_protobuf_generate(); the
consumer's CMakeDeps provides the Boost, gRPC, protobuf and spdlog that
keel's config finds.

    conan create . -o "keel/*:with_grpc=True"
"""

import os

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy

required_conan_version = ">=2.1"


class KeelConan(ConanFile):
    name = "keel"
    version = "0.1.0"
    description = ("Header-only C++20 Raft-replicated transactional object store, "
                   "with an optional gRPC transport")
    topics = ("raft", "consensus", "database", "header-only", "grpc")
    # No license is declared: keel's tree has no license file yet.
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "with_grpc": [True, False],
        "with_spdlog": [True, False],
    }
    default_options = {
        "with_grpc": False,
        "with_spdlog": False,
        # keel uses Boost's header-only libraries (container, crc, intrusive).
        "boost/*:header_only": True,
    }
    exports_sources = (
        "CMakeLists.txt",
        "cmake/*",
        "include/*",
        "adapters/*",
        "proto/*",
        "LICENSE*",
    )

    def configure(self):
        if self.options.with_grpc:
            self.package_type = "static-library"

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        self.requires("boost/[>=1.74 <2]", transitive_headers=True)
        if self.options.with_grpc:
            # keel's gRPC headers include gRPC's and the generated protobuf code.
            self.requires("grpc/[>=1.50 <2]", transitive_headers=True, transitive_libs=True)
            self.requires("protobuf/[>=3.21 <6]", transitive_headers=True, transitive_libs=True)
        if self.options.with_spdlog:
            self.requires("spdlog/[>=1.10 <2]", transitive_headers=True)

    def build_requirements(self):
        if self.options.with_grpc:
            # protoc and grpc_cpp_plugin run on the build machine.
            self.tool_requires("protobuf/<host_version>")
            self.tool_requires("grpc/<host_version>")

    def validate(self):
        check_min_cppstd(self, 20)
        if self.settings.os == "Windows":
            # The WAL and the snapshot store use POSIX files and mmap.
            raise ConanInvalidConfiguration("keel needs a POSIX system (mmap, fsync)")

    def package_id(self):
        if not self.info.options.with_grpc:
            # Headers, CMake files and protos: the same for every configuration.
            # Keep the options in the id: with_spdlog changes what is packaged.
            self.info.settings.clear()
            self.info.requires.clear()

    def generate(self):
        toolchain = CMakeToolchain(self)
        toolchain.cache_variables["KEEL_BUILD_TESTS"] = False
        toolchain.cache_variables["KEEL_BUILD_BENCH"] = False
        toolchain.cache_variables["KEEL_BUILD_EXAMPLES"] = False
        toolchain.cache_variables["KEEL_BUILD_TOOLS"] = False
        toolchain.cache_variables["KEEL_INSTALL"] = True
        toolchain.cache_variables["KEEL_WITH_GRPC"] = "ON" if self.options.with_grpc else "OFF"
        # adapters/spdlog builds keel::spdlog whenever it finds spdlog.
        toolchain.cache_variables["CMAKE_DISABLE_FIND_PACKAGE_spdlog"] = (
            not self.options.with_spdlog)
        toolchain.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        for pattern in ("LICENSE*", "COPYING*"):
            copy(self, pattern, self.source_folder, os.path.join(self.package_folder, "licenses"))
        CMake(self).install()

    def package_info(self):
        # CMake: keel's installed config (share/cmake/keel/keel-config.cmake),
        # found through builddirs, which CMakeToolchain puts on
        # CMAKE_PREFIX_PATH; CMakeDeps generates nothing for keel.
        self.cpp_info.set_property("cmake_find_mode", "none")
        self.cpp_info.set_property("cmake_file_name", "keel")
        self.cpp_info.builddirs = [os.path.join("share", "cmake", "keel")]
        # Other generators (pkg-config, MSBuild) see one flat library: the
        # headers, and libkeel_grpc with every dependency when it is built.
        self.cpp_info.includedirs = ["include"]
        if self.options.with_grpc:
            self.cpp_info.libs = ["keel_grpc"]
        else:
            self.cpp_info.bindirs = []
            self.cpp_info.libdirs = []
