using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using Xunit;

namespace Unrolled.Tests.Harness;

/// <summary>What a finished child process did.</summary>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed, string Transcript);

/// <summary>Runs programs (the dotnet CLI, a published binary) from tests, and finds the repository.</summary>
public static class ChildProcess
{
    /// <summary>The folder holding Generated.sln, found by walking up from the test assembly.</summary>
    public static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Generated.sln")))
                return directory.FullName;
        }
        throw new InvalidOperationException($"No Generated.sln above {AppContext.BaseDirectory}.");
    }

    /// <summary>The dotnet host running the tests, or "dotnet" from PATH.</summary>
    public static string Dotnet =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is string host && File.Exists(host) ? host : "dotnet";

    /// <summary>
    /// Runs a program to its end and returns its exit code, output and the wall time from start to exit; a run
    /// longer than <paramref name="timeout"/> is killed and fails the test. With <paramref name="cleanDotnetEnvironment"/>,
    /// the MSBuild and test-host variables of `dotnet test` are removed (they would leak into a child build) and
    /// build servers and node reuse are off. <paramref name="environment"/> adds variables.
    /// </summary>
    public static ProcessResult Run(string fileName, string workingDirectory, TimeSpan timeout, bool cleanDotnetEnvironment,
        IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var start = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        if (cleanDotnetEnvironment)
        {
            foreach (string name in start.Environment.Keys.ToList())
            {
                if (name.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || name.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)
                    || name.Equals("DOTNET_HOST_PATH", StringComparison.OrdinalIgnoreCase))
                    start.Environment.Remove(name);
            }
            start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
            start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
            start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            start.Environment["DOTNET_NOLOGO"] = "1";
            start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        }
        if (environment is not null)
            foreach (var pair in environment)
                start.Environment[pair.Key] = pair.Value;

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var gate = new object();
        string command = $"$ {fileName} {string.Join(' ', arguments)}";
        string Transcript(int? exitCode)
        {
            lock (gate)
                return $"{command}\n--- exit code {(exitCode?.ToString(CultureInfo.InvariantCulture) ?? "none")}\n--- stdout\n{stdout}--- stderr\n{stderr}";
        }

        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (gate) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (gate) stderr.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.Fail($"did not finish within {timeout}:\n{Transcript(null)}");
        }
        TimeSpan elapsed = clock.Elapsed;
        process.WaitForExit(); // drains the redirected output
        lock (gate)
            return new ProcessResult(process.ExitCode, stdout.ToString(), stderr.ToString(), elapsed, Transcript(process.ExitCode));
    }
}
