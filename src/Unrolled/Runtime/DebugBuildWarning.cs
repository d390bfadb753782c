using System;
using System.ComponentModel;
using System.IO;
using System.Threading;

namespace Unrolled.Runtime;

/// <summary>
/// The run-time half of diagnostic UNR0018. When the generator sees a compilation without optimization
/// (a Debug build), the network class it generates calls <see cref="Report(string)"/> from its static
/// constructor; the first such call in the process writes one line to standard error saying that the
/// kernels run unoptimized and how much slower. Silenced by the environment variable
/// <c>UNROLLED_NO_DEBUG_WARNING</c> (any value but <c>0</c>) or the AppContext switch
/// <c>Unrolled.SuppressDebugBuildWarning</c> (e.g. <c>&lt;RuntimeHostConfigurationOption&gt;</c> in the project).
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class DebugBuildWarning
{
    /// <summary>The environment variable that silences the warning.</summary>
    public const string EnvironmentVariable = "UNROLLED_NO_DEBUG_WARNING";

    /// <summary>The AppContext switch that silences the warning.</summary>
    public const string Switch = "Unrolled.SuppressDebugBuildWarning";

    /// <summary>How much slower LeNet5 trains in a Debug build than in Release (measured; see docs/diagnostics.md#unr0018).</summary>
    public const string Slowdown = "20–45";

    private static int s_reported;

    /// <summary>Writes the warning for <paramref name="network"/> to standard error, once per process.</summary>
    public static void Report(string network)
    {
        if (IsSilenced()) return;
        try
        {
            Report(network, Console.Error);
        }
        catch (IOException)
        {
            // A closed standard error is no reason to fail a network.
        }
    }

    /// <summary>Writes the warning to <paramref name="writer"/> if no network has written it yet; true if it wrote.</summary>
    internal static bool Report(string network, TextWriter writer)
    {
        if (Interlocked.Exchange(ref s_reported, 1) != 0) return false;
        writer.WriteLine(Message(network));
        return true;
    }

    /// <summary>The line written.</summary>
    internal static string Message(string network)
        => $"Unrolled: warning UNR0018: the network '{network}' was compiled without optimization (a Debug build), " +
           $"so it runs about {Slowdown}× slower than in Release; build with -c Release, or set {EnvironmentVariable}=1 to silence this.";

    /// <summary>True if the environment variable or the AppContext switch turns the warning off.</summary>
    internal static bool IsSilenced()
    {
        if (AppContext.TryGetSwitch(Switch, out bool suppressed) && suppressed) return true;
        string? value = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return !string.IsNullOrEmpty(value) && value != "0";
    }

    /// <summary>For tests: lets the next call write again.</summary>
    internal static void Reset() => Interlocked.Exchange(ref s_reported, 0);
}
