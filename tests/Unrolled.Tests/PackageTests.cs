using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Xunit;
using Unrolled.Tests.Harness;

namespace Unrolled.Tests;

/// <summary>
/// Packs the library with <c>dotnet pack</c> and uses the package from a fresh console project, as a user
/// would: the generator must run from analyzers/dotnet/cs and the package's props must allow unsafe code.
/// </summary>
public class PackageTests : IDisposable
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromMinutes(5);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "unrolled-package-" + Guid.NewGuid().ToString("N"));

    public PackageTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    // Tiny: 1×8×8 → conv1 4@3×3 ReLU → 4×6×6 (4·9 + 4 = 40 parameters, 4·36·9 = 1,296 mult-adds)
    //       → maxpool1 2 → 4×3×3 → dense1 3 (36·3 + 3 = 111 parameters, 108 mult-adds): 151 parameters, 1,404 mult-adds.
    private const string Program = """
        using System;
        using System.Globalization;
        using System.Linq;
        using Unrolled;

        [Network(1, 8, 8)]
        [Conv2D(4, 3, Activation = Activation.ReLU)]
        [MaxPool2D(2)]
        [Dense(3)]
        public partial class Tiny;

        public static class Program
        {
            public static int Main()
            {
                CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
                Console.Write(Tiny.Summary);
                Console.WriteLine($"ParameterCount={Tiny.ParameterCount} InputSize={Tiny.InputSize} OutputSize={Tiny.OutputSize}");

                var net = new Tiny(seed: 3);
                const int batch = 6;
                var random = new Random(1);
                float[] input = Enumerable.Range(0, batch * Tiny.InputSize).Select(_ => (float)random.NextDouble()).ToArray();
                int[] labels = Enumerable.Range(0, batch).Select(i => i % Tiny.OutputSize).ToArray();
                var optimizer = Optimizer.Sgd(0.1f, momentum: 0.9f);
                for (int step = 1; step <= 5; step++)
                    Console.WriteLine($"step {step} loss {net.TrainStep(input, labels, optimizer).ToString("R", CultureInfo.InvariantCulture)}");

                float[] output = new float[batch * Tiny.OutputSize];
                net.Forward(input, output);
                for (int n = 0; n < batch; n++)
                    Console.WriteLine("output " + string.Join(" ", output.Skip(n * Tiny.OutputSize).Take(Tiny.OutputSize).Select(v => v.ToString("R", CultureInfo.InvariantCulture))));
                Console.WriteLine($"accuracy {net.Evaluate(input, labels).ToString("R", CultureInfo.InvariantCulture)}");

                net.Save("tiny.safetensors");
                var copy = new Tiny(seed: 4);
                copy.Load("tiny.safetensors");
                float[] again = new float[output.Length];
                copy.Forward(input, again);
                Console.WriteLine($"reloaded equal {again.SequenceEqual(output)}");
                return 0;
            }
        }
        """;

    [Fact]
    [Trait("Category", "Slow")]
    public void PackedPackageCompilesAndTrainsANetworkInAFreshConsoleProject()
    {
        string repository = ChildProcess.RepositoryRoot();
        string feed = Path.Combine(_directory, "feed");
        string packages = Path.Combine(_directory, "packages");
        string app = Path.Combine(_directory, "app");
        Directory.CreateDirectory(app);

        // (a) Pack.
        var pack = RunDotnet(repository, null, "pack", Path.Combine(repository, "src", "Unrolled", "Unrolled.csproj"),
                             "-c", "Release", "-o", feed, "--nologo", "--disable-build-servers");
        Assert.True(pack.ExitCode == 0, $"dotnet pack exited with {pack.ExitCode}:\n{pack.Output}");
        string package = Path.Combine(feed, "Unrolled.0.1.0.nupkg");
        Assert.True(File.Exists(package), $"{package} was not produced; the feed has [{string.Join(", ", Directory.GetFiles(feed).Select(Path.GetFileName))}]:\n{pack.Output}");

        using (ZipArchive zip = ZipFile.OpenRead(package))
        {
            var entries = zip.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);
            string listing = string.Join("\n", entries.OrderBy(e => e, StringComparer.Ordinal));
            Assert.True(entries.Contains("analyzers/dotnet/cs/Unrolled.Generator.dll"), $"the package lacks the generator:\n{listing}");
            Assert.True(entries.Contains("analyzers/dotnet/cs/Unrolled.CodeFixes.dll"), $"the package lacks the IDE code fixes:\n{listing}");
            Assert.True(entries.Contains("lib/net8.0/Unrolled.dll"), $"the package lacks the library:\n{listing}");
            Assert.True(entries.Contains("build/Unrolled.props"), $"the package lacks build/Unrolled.props:\n{listing}");
            Assert.False(entries.Any(e => e.StartsWith("lib/", StringComparison.Ordinal) && e.EndsWith("Unrolled.Generator.dll", StringComparison.Ordinal)),
                $"the generator must not be a library reference:\n{listing}");
            using var reader = new StreamReader(zip.GetEntry("build/Unrolled.props")!.Open());
            string props = reader.ReadToEnd();
            Assert.True(Regex.IsMatch(props, @"<AllowUnsafeBlocks>\s*true\s*</AllowUnsafeBlocks>"), $"build/Unrolled.props does not allow unsafe code:\n{props}");
        }

        // (b) A fresh console project: the package only, no AllowUnsafeBlocks of its own, no Directory.Build.* above it
        // (the temp folder is outside the repository), a private packages folder so no cached Unrolled 0.1.0 is used.
        File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>disable</ImplicitUsings>
                <RestorePackagesPath>{packages}</RestorePackagesPath>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Unrolled" Version="0.1.0" />
              </ItemGroup>
            </Project>
            """);
        // The local feed first; the machine's sources (not cleared) follow for the package's dependencies.
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config>
                <add key="globalPackagesFolder" value="{packages}" />
              </config>
              <packageSources>
                <add key="local" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), Program);

        // (d) Build it: the compiler is handed both assemblies of analyzers/dotnet/cs and must load them without a
        // word, in particular the code fixes, which reference Microsoft.CodeAnalysis.Workspaces (not in the compiler).
        var build = RunDotnet(app, packages, "build", Path.Combine(app, "App.csproj"), "-c", "Release", "--disable-build-servers", "-v", "n");
        Assert.True(build.ExitCode == 0, $"dotnet build exited with {build.ExitCode}:\n{build.Output}");
        foreach (string assembly in new[] { "Unrolled.Generator.dll", "Unrolled.CodeFixes.dll" })
            Assert.True(Regex.IsMatch(build.Output, @"/analyzer:\S*analyzers[/\\]dotnet[/\\]cs[/\\]" + Regex.Escape(assembly)), $"the compiler was not given {assembly}:\n{build.Output}");
        string[] analyzerWarnings = build.Output.Split('\n')
            .Where(l => Regex.IsMatch(l, @"\bwarning (CS8032|CS8033|CS8034|CS8850|CS9057|CS9067|AD\d{4})\b")
                        || Regex.IsMatch(l, @": warning .*Unrolled\.(Generator|CodeFixes)"))
            .ToArray();
        Assert.True(analyzerWarnings.Length == 0, "loading the package's analyzers warned:\n" + string.Join("\n", analyzerWarnings));
        Assert.DoesNotContain("UNR0", build.Output);

        // (e) Run it.
        var run = RunDotnet(app, packages, "run", "--project", Path.Combine(app, "App.csproj"), "-c", "Release", "--no-build");
        string output = run.Output;
        Assert.True(run.ExitCode == 0, $"dotnet run exited with {run.ExitCode}:\n{output}");
        Assert.DoesNotContain("UNR0", output);

        // The restored package is the one just packed, not a stale copy from elsewhere.
        string restored = Path.Combine(packages, "unrolled", "0.1.0", "unrolled.0.1.0.nupkg");
        Assert.True(File.Exists(restored), $"{restored} does not exist: the package was not restored into the private folder:\n{output}");
        Assert.True(SHA256.HashData(File.ReadAllBytes(restored)).SequenceEqual(SHA256.HashData(File.ReadAllBytes(package))),
            "the restored Unrolled 0.1.0 is not the package just packed");

        // (c) The summary, whitespace collapsed so that column widths do not matter.
        string[] lines = output.Replace("\r", "").Split('\n').Select(l => Regex.Replace(l.Trim(), @"\s+", " ")).ToArray();
        string[] expectedLines =
        {
            "Tiny",
            "Layer Kind Output Parameters Mult-adds Receptive field",
            "input Input 1×8×8 0 0 1×1",
            "conv1 Conv2D 3×3/1 ReLU 4×6×6 40 1,296 3×3",
            "maxpool1 MaxPool2D 2×2/2 4×3×3 0 0 4×4",
            "dense1 Dense 3 111 108 global",
            "Total parameters: 151",
            "Multiply-adds per sample: 1,404",
            "Input 1×8×8 (64 floats), output 3 (3 floats)",
            "ParameterCount=151 InputSize=64 OutputSize=3",
            "reloaded equal True",
        };
        foreach (string expected in expectedLines)
            Assert.True(lines.Contains(expected), $"the output lacks the line '{expected}':\n{output}");

        // Training and inference printed finite numbers.
        float[] losses = lines.Where(l => l.StartsWith("step ", StringComparison.Ordinal))
                              .Select(l => float.Parse(l.Split(' ')[3], CultureInfo.InvariantCulture)).ToArray();
        Assert.True(losses.Length == 5, $"expected 5 training steps:\n{output}");
        Assert.True(losses.All(float.IsFinite) && losses.All(l => l > 0), $"non-finite or non-positive losses:\n{output}");
        Assert.True(losses[^1] < losses[0], $"five SGD steps on one batch did not lower the loss:\n{output}");

        float[][] outputs = lines.Where(l => l.StartsWith("output ", StringComparison.Ordinal))
                                 .Select(l => l.Split(' ').Skip(1).Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        Assert.True(outputs.Length == 6 && outputs.All(o => o.Length == 3), $"expected 6 outputs of 3 values:\n{output}");
        Assert.True(outputs.SelectMany(o => o).All(float.IsFinite), $"non-finite outputs:\n{output}");
        Assert.True(outputs.SelectMany(o => o).Distinct().Count() > 3, $"the outputs look constant:\n{output}");
        Assert.Contains(lines, l => Regex.IsMatch(l, @"^accuracy (0|1|0\.\d+)$"));
    }

    /// <summary>
    /// Runs the dotnet CLI with a clean MSBuild environment; returns its exit code and its whole transcript.
    /// <paramref name="packages"/>, when given, becomes NUGET_PACKAGES (not for the pack, whose restore
    /// writes the repository's obj folder and must keep using the usual packages folder).
    /// </summary>
    private static (int ExitCode, string Output) RunDotnet(string workingDirectory, string? packages, params string[] arguments)
    {
        var environment = packages is null ? null : new Dictionary<string, string> { ["NUGET_PACKAGES"] = packages };
        ProcessResult result = ChildProcess.Run(ChildProcess.Dotnet, workingDirectory, ProcessTimeout, cleanDotnetEnvironment: true, environment, arguments);
        return (result.ExitCode, result.Transcript);
    }
}
