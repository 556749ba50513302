{
  description = "recipe: declarative, reproducible build-and-verify for C, C++ and Rust";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs =
    { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      pyprojectToml = lib.importTOML ./pyproject.toml;

      # The runtime dependencies, as pyproject.toml lists them.
      runtimeDeps =
        ps: with ps; [
          jsonschema
          ruamel-yaml
          pathspec
          tabulate
          regex
        ];

      # What the test suite runs besides Python: the system toolchain that C and C++ projects are
      # realised with (gcc, g++ and binutils come with stdenv; listed to be explicit), Rust for
      # Rust projects, and the tools some tests compare with or detect.
      testTools =
        pkgs: with pkgs; [
          gcc
          binutils
          gnumake
          ccache
          rustc
          cargo
          git
          ruff
        ];

      recipeFor =
        pkgs:
        pkgs.python3Packages.buildPythonApplication {
          pname = "recipe";
          inherit (pyprojectToml.project) version;
          pyproject = true;
          src = lib.cleanSource ./.;

          build-system = [ pkgs.python3Packages.setuptools ];
          dependencies = runtimeDeps pkgs.python3Packages; # propagated to the installed program

          # The suite needs compilers and writes stores; checks.default runs it.
          doCheck = false;
          pythonImportsCheck = [
            "engine"
            "engine.cli.main"
          ];

          meta = {
            description = pyprojectToml.project.description;
            mainProgram = "recipe";
            platforms = systems;
          };
        };
    in
    {
      packages = forAllSystems (pkgs: rec {
        recipe = recipeFor pkgs;
        default = recipe;
      });

      checks = forAllSystems (pkgs: {
        # The whole pytest suite against the installed package, in the build sandbox.
        default = (recipeFor pkgs).overridePythonAttrs (_: {
          doCheck = true;
          nativeCheckInputs = [ pkgs.python3Packages.pytestCheckHook ] ++ testTools pkgs;
          pytestFlagsArray = [ "-q" ];
          preCheck = ''
            export HOME="$TMPDIR"                # the sandbox's HOME does not exist
            export PATH="$out/bin:$PATH"         # tests that run the `recipe` command
            # `python -m pytest` puts the source tree first on sys.path; give its `engine` the
            # schema subpackage that the installed one has (package-dir maps it from schema/).
            [ -e engine/schema ] || ln -s ../schema engine/schema
          '';
        });
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          # Python and the dependencies from nixpkgs (on PYTHONPATH, so visible in the venv), and
          # an editable install of the working tree in .venv, made once by venvShellHook, so that
          # `recipe` and `python -m pytest` run the code being edited, schema/ included.
          venvDir = ".venv";
          buildInputs =
            with pkgs.python3Packages;
            [
              python
              venvShellHook
              setuptools
              pytest
            ]
            ++ runtimeDeps pkgs.python3Packages;
          packages = testTools pkgs;
          postVenvCreation = ''
            unset SOURCE_DATE_EPOCH   # pip refuses zip timestamps before 1980
            pip install --quiet --no-deps --no-build-isolation -e .
          '';
        };
      });
    };
}
