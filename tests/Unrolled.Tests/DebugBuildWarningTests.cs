using System;
using System.IO;
using Unrolled.Runtime;
using Xunit;

namespace Unrolled.Tests;

/// <summary>The run-time half of UNR0018: one line, once per process, silenced by a variable or a switch.</summary>
[Collection(nameof(DebugBuildWarningTests))]
public class DebugBuildWarningTests
{
    [Fact]
    public void The_warning_is_written_once_and_names_the_network_and_the_slowdown()
    {
        DebugBuildWarning.Reset();
        try
        {
            var first = new StringWriter();
            var second = new StringWriter();
            Assert.True(DebugBuildWarning.Report("LeNet5", first));
            Assert.False(DebugBuildWarning.Report("OtherNet", second));

            string line = first.ToString();
            Assert.Equal(DebugBuildWarning.Message("LeNet5") + Environment.NewLine, line);
            Assert.StartsWith("Unrolled: warning UNR0018: the network 'LeNet5' was compiled without optimization", line);
            Assert.Contains($"about {DebugBuildWarning.Slowdown}× slower than in Release", line);
            Assert.Contains("UNROLLED_NO_DEBUG_WARNING=1", line);
            Assert.Equal("", second.ToString());
        }
        finally
        {
            DebugBuildWarning.Reset();
        }
    }

    [Fact]
    public void The_environment_variable_and_the_AppContext_switch_silence_it()
    {
        string? saved = Environment.GetEnvironmentVariable(DebugBuildWarning.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(DebugBuildWarning.EnvironmentVariable, null);
            AppContext.SetSwitch(DebugBuildWarning.Switch, false);
            Assert.False(DebugBuildWarning.IsSilenced());

            Environment.SetEnvironmentVariable(DebugBuildWarning.EnvironmentVariable, "1");
            Assert.True(DebugBuildWarning.IsSilenced());
            Environment.SetEnvironmentVariable(DebugBuildWarning.EnvironmentVariable, "0");
            Assert.False(DebugBuildWarning.IsSilenced());

            Environment.SetEnvironmentVariable(DebugBuildWarning.EnvironmentVariable, null);
            AppContext.SetSwitch(DebugBuildWarning.Switch, true);
            Assert.True(DebugBuildWarning.IsSilenced());
        }
        finally
        {
            AppContext.SetSwitch(DebugBuildWarning.Switch, false);
            Environment.SetEnvironmentVariable(DebugBuildWarning.EnvironmentVariable, saved);
        }
    }
}
