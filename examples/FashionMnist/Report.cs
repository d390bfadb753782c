using System.Collections.Generic;
using System.IO;
using Unrolled;

namespace FashionMnist;

/// <summary>Writes the HTML report (placeholder until the report lands; see issue "real use").</summary>
public static class Report
{
    public static string Write(string directory, INetwork net, string summary, IReadOnlyList<EpochResult> history, LabeledImages test, string model)
    {
        throw new System.NotImplementedException("--report is not implemented yet.");
    }
}
